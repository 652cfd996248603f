#!/usr/bin/env python3
"""programme.py - a synthetic Peruvian agricultural programme for quipu.

Standard library only; the same --seed always writes the same files.

The programme: producer organisations (cooperatives and associations, each
with a RUC that passes SUNAT's check digit) in five regions (Junin, San
Martin, Piura, Cusco, Puno) growing coffee, cacao, banana and quinoa;
producers with unique DNIs, Spanish (and Quechua/Aymara) names and sex;
plots as polygons (counter-clockwise, RFC 7946) and points with declared
areas, placed so that no two overlap except where an overlap is planted; a
programme network that plans training services of 1-4 sessions, the
commitments organisations signed for them and about 50% attendance (with
non-registered attendees); lots received from producers with their plots,
merged, transformed (cherry -> parchment -> green coffee, wet -> dry cacao),
split and shipped to buyer firms, and a buyer's claim.

It is spread over a hub and three field nodes (tablets), each serving the
organisations of its regions (a few organisations are served by two), and
written in phases:
  hub.jsonl         phase 0, at the hub: organisations, services,
                    commitments
  nodeN-1.jsonl     phase 1: producers, plots, sessions, received lots
  nodeN-2.jsonl     phase 2, after a sync: attendance, lot events
  nodeN-3.jsonl     phase 3, after a sync: consumption that clashes with
                    the other node's (mass balance broken only at the hub)
and truth.json says what quipu must find: the upstream trace and the dds
plot set of every shipped lot, downstream traces of some producers, the
attendance report by org and by service, the overlapping and duplicate
plots, the over-consumed lots and the duplicate producers that were
planted.  nodes.json says which orgs each node is enrolled for, its files
and the record counts it must hold after each phase.

Planted across devices (the two nodes sharing an org record the same
thing without having seen each other): duplicate producers (same DNI,
check duplicates), duplicate attendance (same person at the same session;
the report merges them), duplicate plots (the same land walked twice), and
over-consumption (both nodes take 70% of one lot).

Usage: programme.py --out DIR [--seed N] [--orgs N] [--producers N]
                    [--plots N] [--attendance N] [--ship-orgs N]
                    [--dds-plots N] [--single [--kinds K,K...]]
                    [--overlaps N] [--shared N] [--overconsumed N]
                    [--dup-producers N] [--dup-plots N] [--att-dups N]
Defaults: 150 orgs, 1,500 producers (about 2,500 plots, 10,000 attendance
records, 20,000 records in all), 12 shipping orgs.  For benches:
  --plots N       exactly N plots (producers scale with them unless given)
  --attendance N  exactly N attendance records (producers and commitments
                  grow to make room)
  --dds-plots N   the first shipping org's shipment draws on exactly N
                  plots (truth.json "dds_bench")
  --single        one file, all.jsonl, for a single node: no cross-device
                  plants that one node would refuse
  --kinds K,...   with --single: write only records of these kinds
The plants: --overlaps pairs of overlapping plots (default 6, the first
upstream of a shipment), --shared orgs served by two nodes (6), and in
them --overconsumed lots (3), --dup-producers (2), --dup-plots (2: a
polygon and a point) and --att-dups attendance records (12).
"""
import argparse
import json
import math
import os
import random

# ---------------------------------------------------------------------------
# Geography: region -> [(province, district, lon, lat, crops)].  Centres of
# the districts' farming areas, approximately.

REGIONS = {
    "Junín": [
        ("Chanchamayo", "Pichanaqui", -74.871, -10.925, ["coffee"]),
        ("Chanchamayo", "Perené", -75.224, -10.948, ["coffee"]),
        ("Chanchamayo", "San Ramón", -75.357, -11.124, ["coffee"]),
        ("Satipo", "Pangoa", -74.488, -11.427, ["coffee", "cacao"]),
        ("Satipo", "Río Tambo", -74.133, -11.150, ["cacao"]),
        ("Satipo", "Mazamari", -74.530, -11.326, ["coffee", "cacao"]),
        ("Satipo", "Satipo", -74.638, -11.254, ["coffee"]),
    ],
    "San Martín": [
        ("Moyobamba", "Moyobamba", -76.971, -6.034, ["coffee"]),
        ("Moyobamba", "Jepelacio", -76.912, -6.108, ["coffee"]),
        ("Rioja", "Nueva Cajamarca", -77.309, -5.938, ["coffee"]),
        ("Lamas", "Tabalosos", -76.634, -6.388, ["cacao"]),
        ("Mariscal Cáceres", "Juanjuí", -76.727, -7.178, ["cacao"]),
        ("Tocache", "Tocache", -76.513, -8.188, ["cacao"]),
        ("Tocache", "Uchiza", -76.463, -8.459, ["cacao"]),
    ],
    "Piura": [
        ("Sullana", "Querecotillo", -80.646, -4.838, ["banana"]),
        ("Sullana", "Marcavelica", -80.705, -4.877, ["banana"]),
        ("Sullana", "Ignacio Escudero", -80.870, -4.846, ["banana"]),
        ("Morropón", "Buenos Aires", -79.962, -5.262, ["cacao"]),
        ("Huancabamba", "Canchaque", -79.606, -5.375, ["coffee"]),
        ("Ayabaca", "Montero", -79.828, -4.629, ["coffee"]),
    ],
    "Cusco": [
        ("La Convención", "Santa Ana", -72.691, -12.864, ["coffee", "cacao"]),
        ("La Convención", "Echarati", -72.578, -12.767, ["coffee", "cacao"]),
        ("La Convención", "Huayopata", -72.550, -13.000, ["coffee"]),
        ("La Convención", "Santa Teresa", -72.595, -13.131, ["coffee"]),
        ("La Convención", "Pichari", -73.830, -12.520, ["cacao"]),
        ("La Convención", "Kimbiri", -73.788, -12.617, ["cacao", "coffee"]),
    ],
    "Puno": [
        ("Sandia", "San Juan del Oro", -69.153, -14.219, ["coffee"]),
        ("Sandia", "Alto Inambari", -69.330, -14.120, ["coffee"]),
        ("Sandia", "Putina Punco", -69.048, -14.110, ["coffee"]),
        ("Azángaro", "Azángaro", -70.193, -14.909, ["quinoa"]),
        ("El Collao", "Ilave", -69.638, -16.087, ["quinoa"]),
        ("Chucuito", "Juli", -69.459, -16.213, ["quinoa"]),
        ("San Román", "Cabana", -70.320, -15.650, ["quinoa"]),
    ],
}
REGION_SHARE = {"Junín": 0.27, "San Martín": 0.23, "Piura": 0.16,
                "Cusco": 0.17, "Puno": 0.17}
REGION_CODE = {"Junín": "JU", "San Martín": "SM", "Piura": "PI",
               "Cusco": "CU", "Puno": "PU"}
# The field node that serves each region.
REGION_NODE = {"Junín": 0, "San Martín": 1, "Piura": 1, "Cusco": 2, "Puno": 2}
NODE_NAMES = ["tablet-selva-central", "tablet-nororiente", "tablet-sur"]
ALTITUDE = {"coffee": (1000, 1900), "cacao": (250, 900), "banana": (40, 150),
            "quinoa": (3810, 3950)}
# Plot area (ha) per crop: (low, high) of a log-uniform draw.
PLOT_HA = {"coffee": (0.5, 5.0), "cacao": (0.5, 6.0), "banana": (0.5, 3.0),
           "quinoa": (0.5, 2.5)}

F_NAMES = ["María", "Rosa", "Juana", "Carmen", "Luz", "Elena", "Yolanda",
           "Marleni", "Nilda", "Gladys", "Norma", "Flor", "Delia", "Edith",
           "Sonia", "Teófila", "Hilda", "Maribel", "Rocío", "Lucía", "Isabel",
           "Celestina", "Julia", "Antonia", "Eva", "Nelly", "Zoila", "Betty",
           "Luzmila", "Haydée"]
M_NAMES = ["José", "Juan", "Luis", "Carlos", "Jorge", "Víctor", "Pedro",
           "Manuel", "Wilmer", "Edwin", "Segundo", "Teodoro", "Alfredo",
           "Hugo", "Nilo", "Santos", "Félix", "Marcelino", "Eusebio", "Elmer",
           "Roberto", "Walter", "Fortunato", "Jaime", "Abel", "Américo",
           "Fidel", "Gregorio", "Rubén", "Óscar"]
SURNAMES_COAST = ["Flores", "Rojas", "Sánchez", "Ramos", "Vásquez", "Chávez",
                  "Torres", "Díaz", "Gutiérrez", "Mendoza", "Castillo",
                  "García", "Pérez", "Ruiz", "Salazar", "Campos", "Fernández",
                  "Cárdenas", "Guevara", "Tocto", "Huamán", "Rivera",
                  "Silva", "Córdova", "Zapata", "Yovera", "Chunga", "Ipanaqué"]
SURNAMES_ANDES = ["Quispe", "Mamani", "Huamán", "Condori", "Ccori", "Apaza",
                  "Huanca", "Tapia", "Cruz", "Paucar", "Inga", "Yupanqui",
                  "Chuquimia", "Ticona", "Choque", "Coaquira", "Puma",
                  "Ccama", "Layme", "Hancco", "Flores", "Ramos", "Gutiérrez",
                  "Vargas", "Choquehuanca", "Callo", "Pari", "Turpo"]
SURNAMES_SELVA = ["Rojas", "Camposano", "Ñaupari", "Rivera", "Chuquillanqui",
                  "Quispe", "Vilchez", "Espinoza", "Mayta", "Huamán", "Ríos",
                  "Torres", "Meza", "Romero", "Pérez", "Aquino", "Salvador",
                  "Lázaro", "Cóndor", "Inga", "Baltazar", "Cairo", "Chimanga",
                  "Shimpe", "Mishari", "Ramírez", "Soto", "Ordóñez"]
SURNAMES = {"Junín": SURNAMES_SELVA, "San Martín": SURNAMES_COAST,
            "Piura": SURNAMES_COAST, "Cusco": SURNAMES_ANDES,
            "Puno": SURNAMES_ANDES}
COMMUNITY_KIND = {"Junín": ["Comunidad Nativa", "Anexo", "Sector"],
                  "San Martín": ["Caserío", "Centro Poblado", "Sector"],
                  "Piura": ["Caserío", "Centro Poblado", "Sector"],
                  "Cusco": ["Comunidad Campesina", "Sector", "Anexo"],
                  "Puno": ["Comunidad Campesina", "Parcialidad", "Sector"]}
PLACES = ["San Juan", "Santa Rosa", "Villa Rica", "Nuevo Progreso",
          "Los Ángeles", "La Florida", "Bajo Naranjal", "Alto Palomar",
          "Unión Progreso", "San Martín de Pangoa", "Paraíso", "Miraflores",
          "Pampa Hermosa", "Bella Vista", "Monte Verde", "Las Palmas",
          "Nueva Esperanza", "San Antonio", "Santa Cruz", "El Porvenir",
          "Shimabenzo", "Pampa Michi", "Huacapistana", "Tsiriari",
          "Puerto Ocopa", "Alto Mayo", "Naranjillo", "Jesús del Monte",
          "Chontabamba", "Yanamayo", "Ccochapampa", "Qollana", "Huancollusco",
          "Chijichaya", "Ayrihuas", "Tintiri", "Cambio 90", "Santa Elena",
          "Buenos Aires", "San Pedro", "La Libertad", "Pueblo Libre",
          "Dos de Mayo", "Primavera", "Flor de Café", "Sol Naciente"]
ORG_KIND = {
    "coffee": ["Cooperativa Agraria Cafetalera", "Cooperativa Agraria de "
               "Servicios", "Asociación de Productores de Café",
               "Cooperativa Agraria"],
    "cacao": ["Asociación de Productores Cacaoteros", "Cooperativa Agraria "
              "Cacaotera", "Cooperativa Agroindustrial",
              "Asociación de Productores Agropecuarios"],
    "banana": ["Asociación de Pequeños Productores de Banano Orgánico",
               "Cooperativa Agraria de Productores de Banano",
               "Asociación de Bananeros Orgánicos"],
    "quinoa": ["Asociación de Productores de Quinua",
               "Cooperativa Agraria de Granos Andinos",
               "Asociación de Productores Agropecuarios"],
}
FIRMS = [
    ("Exportadora Andina del Sur S.A.C.", "Lima", "Lima", "San Isidro"),
    ("Cafés Selva Central Trading S.A.C.", "Junín", "Chanchamayo",
     "La Merced"),
    ("Cacao Amazónico Export S.A.C.", "San Martín", "San Martín",
     "Tarapoto"),
    ("Banano Norte Export S.A.C.", "Piura", "Sullana", "Sullana"),
    ("Granos del Altiplano Export S.A.C.", "Puno", "San Román", "Juliaca"),
]
DESTINATIONS = ["Hamburgo, Alemania", "Amberes, Bélgica",
                "Rotterdam, Países Bajos", "Génova, Italia",
                "Le Havre, Francia", "Barcelona, España",
                "Bremen, Alemania", "Felixstowe, Reino Unido"]
CARRIERS = ["MSKU", "MAEU", "HLXU", "CMAU", "MSCU", "TGHU"]
PRODUCT = {"coffee": "coffee-parchment", "cacao": "cacao-wet",
           "banana": "banana", "quinoa": "quinoa"}
TOPICS = {
    "coffee": ["Escuela de campo: manejo integrado de la roya amarilla",
               "Podas y renovación de cafetales",
               "Cosecha selectiva y beneficio húmedo del café",
               "Manejo de sombra y biodiversidad en cafetales"],
    "cacao": ["Injertación y manejo de plantones de cacao",
              "Fermentación y secado de cacao fino de aroma",
              "Control de moniliasis y mazorca negra"],
    "banana": ["Manejo de sigatoka negra en banano orgánico",
               "Buenas prácticas de cosecha y empaque de banano"],
    "quinoa": ["Manejo del cultivo de quinua orgánica",
               "Control de la polilla de la quinua (kcona kcona)",
               "Cosecha, trilla y venteo de quinua"],
}
TOPICS_COMMON = [
    ("management", "Gestión empresarial y contabilidad de la organización"),
    ("management", "Sistema interno de control para la certificación "
     "orgánica"),
    ("management", "Liderazgo y participación de la mujer en la "
     "organización"),
    ("production", "Georreferenciación de parcelas para el cumplimiento "
     "EUDR"),
    ("foreign-trade", "Reglamento UE 2023/1115 (EUDR): debida diligencia "
     "para exportar"),
    ("foreign-trade", "Contratos de exportación, Incoterms y trazabilidad "
     "de lotes"),
]
PROVIDERS = {
    "Junín": ["Programa Cadenas Sostenibles - Selva Central", "INIA Pichanaqui",
              "Cámara Peruana del Café y Cacao"],
    "San Martín": ["Programa Cadenas Sostenibles - San Martín",
                   "DEVIDA Tarapoto", "Cámara Peruana del Café y Cacao"],
    "Piura": ["Programa Cadenas Sostenibles - Piura", "SENASA Piura",
              "Sierra y Selva Exportadora"],
    "Cusco": ["Programa Cadenas Sostenibles - Cusco",
              "INIA Quillabamba", "Sierra y Selva Exportadora"],
    "Puno": ["Programa Cadenas Sostenibles - Puno", "INIA Illpa",
             "Sierra y Selva Exportadora"],
}
CLAIM_REASONS = ["Ocratoxina A por encima del límite en la muestra de "
                 "llegada", "Humedad de 13,8% en destino (contrato: 12% "
                 "máximo)", "Defectos físicos por encima del grado pactado"]

CELL_M = 900.0  # each plot has a cell of its own, 900 m square
WGS_A = 6378137.0
WGS_F = 1 / 298.257223563
WGS_E2 = WGS_F * (2 - WGS_F)


# ---------------------------------------------------------------------------
# Small helpers

def tenths(t):
    """kg held as integer tenths, written as a number."""
    return round(t / 10.0, 1)


def ruc_check_digit(base10):
    w = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2]
    r = 11 - sum(int(c) * x for c, x in zip(base10, w)) % 11
    return {10: 0, 11: 1}.get(r, r)


def iso6346(owner_serial):
    """Container number with its ISO 6346 check digit (e.g. MSKU1234565)."""
    vals = {}
    v = 10
    for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        if v % 11 == 0:
            v += 1
        vals[ch] = v
        v += 1
    s = 0
    for i, ch in enumerate(owner_serial):
        d = vals[ch] if ch.isalpha() else int(ch)
        s += d * (2 ** i)
    return owner_serial + str(s % 11 % 10)


def local_scale(lat):
    """Metres per radian of longitude and latitude at lat (WGS84)."""
    p = math.radians(lat)
    s = math.sin(p)
    n = WGS_A / math.sqrt(1 - WGS_E2 * s * s)
    m = WGS_A * (1 - WGS_E2) / (1 - WGS_E2 * s * s) ** 1.5
    return n * math.cos(p), m


def to_lonlat(x, y, lon0, lat0):
    kx, ky = local_scale(lat0)
    return (round(lon0 + math.degrees(x / kx), 6),
            round(lat0 + math.degrees(y / ky), 6))


def to_xy(lon, lat, lon0, lat0):
    kx, ky = local_scale(lat0)
    return (math.radians(lon - lon0) * kx, math.radians(lat - lat0) * ky)


def shoelace(pts):
    a = 0.0
    for i in range(len(pts)):
        x1, y1 = pts[i]
        x2, y2 = pts[(i + 1) % len(pts)]
        a += x1 * y2 - x2 * y1
    return a / 2.0


def ring_area_ha(ring):
    """Area (ha) of a closed lon/lat ring, in a local equal-area frame."""
    lon0, lat0 = ring[0]
    pts = [to_xy(lo, la, lon0, lat0) for lo, la in ring[:-1]]
    return abs(shoelace(pts)) / 10000.0


def convex_hull(pts):
    pts = sorted(set(pts))
    if len(pts) < 3:
        return pts

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]  # counter-clockwise


def clip_convex(subject, clip):
    """Sutherland-Hodgman: subject polygon clipped by a convex CCW clip."""
    out = subject
    for i in range(len(clip)):
        a, b = clip[i], clip[(i + 1) % len(clip)]
        inp, out = out, []
        if not inp:
            break

        def inside(p):
            return ((b[0] - a[0]) * (p[1] - a[1]) -
                    (b[1] - a[1]) * (p[0] - a[0])) >= 0

        def inter(p, q):
            x1, y1, x2, y2 = a[0], a[1], b[0], b[1]
            x3, y3, x4, y4 = p[0], p[1], q[0], q[1]
            den = (x1 - x2) * (y3 - y4) - (y1 - y2) * (x3 - x4)
            t = ((x1 - x3) * (y3 - y4) - (y1 - y3) * (x3 - x4)) / den
            return (x1 + t * (x2 - x1), y1 + t * (y2 - y1))
        for j in range(len(inp)):
            p, q = inp[j - 1], inp[j]
            if inside(q):
                if not inside(p):
                    out.append(inter(p, q))
                out.append(q)
            elif inside(p):
                out.append(inter(p, q))
    return out


def overlap_ha(ring_a, ring_b):
    """Intersection area (ha) of two convex lon/lat rings."""
    lon0, lat0 = ring_a[0]
    a = [to_xy(lo, la, lon0, lat0) for lo, la in ring_a[:-1]]
    b = [to_xy(lo, la, lon0, lat0) for lo, la in ring_b[:-1]]
    c = clip_convex(a, b)
    return abs(shoelace(c)) / 10000.0 if len(c) >= 3 else 0.0


def fmt_geom(g):
    """GeoJSON text of a geometry with 6-decimal coordinates."""
    def pos(p):
        return "[%.6f,%.6f]" % (p[0], p[1])
    if g["type"] == "Point":
        c = pos(g["coordinates"])
    elif g["type"] == "Polygon":
        c = "[" + ",".join("[" + ",".join(pos(p) for p in r) + "]"
                           for r in g["coordinates"]) + "]"
    else:
        c = "[" + ",".join("[" + ",".join("[" + ",".join(pos(p) for p in r)
                                          + "]" for r in poly) + "]"
                           for poly in g["coordinates"]) + "]"
    return '{"type":"%s","coordinates":%s}' % (g["type"], c)


def dumps(rec):
    """One JSON line; geometry written with 6 decimals, meta keys left out."""
    out = {k: v for k, v in rec.items() if not k.startswith("_")}
    geo = {}
    for k in ("geometry", "place"):
        if k in out:
            geo[k] = fmt_geom(out[k])
            out[k] = "\x00%s\x00" % k
    s = json.dumps(out, ensure_ascii=False, separators=(",", ":"))
    for k, t in geo.items():
        s = s.replace('"\\u0000%s\\u0000"' % k, t)
    return s


def geom_key(g):
    """A canonical key of a geometry (coordinates at 6 decimals)."""
    def walk(c):
        if isinstance(c, list) and c and isinstance(c[0], (int, float)):
            return "%.6f,%.6f" % (c[0], c[1])
        return "[" + ";".join(walk(x) for x in c) + "]"
    return g["type"] + walk(g["coordinates"])


# ---------------------------------------------------------------------------
# The generator

class Programme:
    def __init__(self, a):
        self.a = a
        self.seed = a.seed
        self.recs = []          # every record, in creation order
        self.byid = {}
        self.clock = {}         # phase -> ms for UUIDv7 ids
        self.dnis = set()
        self.rucs = set()
        self.codes = set()
        self.truth = {}

    def rng(self, name):
        return random.Random("%s:%s" % (self.seed, name))

    def new_id(self, rnd, phase):
        # UUIDv7: the phase's date as the time, random bits from the
        # seeded stream.
        base = {0: 1736935200000, 1: 1744711200000, 2: 1757930400000,
                3: 1760004000000}[phase]
        ms = base + self.clock.get(phase, 0)
        self.clock[phase] = self.clock.get(phase, 0) + 7
        r = rnd.getrandbits(74)
        b = (ms << 80) | (0x7 << 76) | ((r >> 62) << 64) | (0b10 << 62) | \
            (r & ((1 << 62) - 1))
        h = "%032x" % b
        return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20],
                                   h[20:])

    def add(self, rec, node, phase, rnd):
        if "id" not in rec:
            rec = dict({"id": self.new_id(rnd, phase)}, **rec)
        if rec["kind"] == "org":
            rec["org"] = rec["id"]
        rec["_node"] = node
        rec["_phase"] = phase
        self.recs.append(rec)
        self.byid[rec["id"]] = rec
        return rec

    # -- organisations ------------------------------------------------------

    def new_ruc(self, rnd):
        while True:
            base = "20" + "%08d" % rnd.randrange(10 ** 8)
            ruc = base + str(ruc_check_digit(base))
            if ruc not in self.rucs:
                self.rucs.add(ruc)
                return ruc

    def new_dni(self, rnd):
        while True:
            d = "%08d" % rnd.choice([rnd.randrange(1000000, 10000000),
                                     rnd.randrange(40000000, 49000000),
                                     rnd.randrange(40000000, 49000000),
                                     rnd.randrange(70000000, 77000000)])
            if d not in self.dnis:
                self.dnis.add(d)
                return d

    def make_orgs(self):
        rnd = self.rng("orgs")
        a = self.a
        n = a.orgs
        self.network = self.add({
            "kind": "org", "ruc": self.new_ruc(rnd),
            "name": "Red de Organizaciones Agrarias del Perú - Programa "
                    "Cadenas Sostenibles",
            "type": "network", "region": "Lima", "province": "Lima",
            "district": "Jesús María"}, "hub", 0, rnd)
        self.firms = []
        for name, reg, prov, dist in FIRMS:
            self.firms.append(self.add({
                "kind": "org", "ruc": self.new_ruc(rnd), "name": name,
                "type": "firm", "region": reg, "province": prov,
                "district": dist}, "hub", 0, rnd))
        counts = {r: max(1, int(round(n * s))) for r, s in
                  REGION_SHARE.items()}
        while sum(counts.values()) > n:
            counts[max(counts, key=counts.get)] -= 1
        while sum(counts.values()) < n:
            counts[min(counts, key=counts.get)] += 1
        self.orgs = []
        names = set()
        for region in REGIONS:
            dists = REGIONS[region]
            for i in range(counts[region]):
                prov, dist, lon, lat, crops = dists[i % len(dists)]
                crop = crops[(i // len(dists)) % len(crops)]
                while True:
                    kind = rnd.choice(ORG_KIND[crop])
                    place = rnd.choice(PLACES + [dist, dist])
                    name = "%s %s" % (kind, place)
                    if name in names:
                        name = "%s %s %s" % (kind, place, rnd.choice(
                            ["Ltda.", "de %s" % dist, "II", "Unión",
                             "Los Andes", "Alto %s" % dist]))
                    if name not in names:
                        break
                names.add(name)
                t = ("cooperative" if kind.startswith("Cooperativa")
                     else "association")
                o = self.add({"kind": "org", "ruc": self.new_ruc(rnd),
                              "name": name, "type": t, "region": region,
                              "province": prov, "district": dist},
                             "hub", 0, rnd)
                o["_region"] = region
                o["_crop"] = crop
                o["_centre"] = (lon, lat)
                o["_code"] = "%s%03d" % (REGION_CODE[region], len(self.orgs)
                                         + 1)
                o["_node"] = "hub"
                o["_home"] = REGION_NODE[region]
                o["_second"] = None
                self.orgs.append(o)

    def choose_roles(self):
        """Shipping orgs and orgs shared by two nodes."""
        rnd = self.rng("roles")
        a = self.a
        by_crop = {}
        for o in self.orgs:
            by_crop.setdefault(o["_crop"], []).append(o)
        ship = []
        # Every crop ships at least once, then any org.
        for crop in ("coffee", "cacao", "banana", "quinoa"):
            if by_crop.get(crop) and len(ship) < a.ship_orgs:
                ship.append(rnd.choice(by_crop[crop]))
        rest = [o for o in self.orgs if o not in ship]
        rnd.shuffle(rest)
        while len(ship) < a.ship_orgs and rest:
            ship.append(rest.pop())
        for o in self.orgs:
            o["_ship"] = o in ship
        self.ship_orgs = ship
        shared = []
        if not a.single:
            cands = [o for o in self.orgs if not o["_ship"]]
            rnd.shuffle(cands)
            # At least one per node pair, in a fixed order.
            for home in (0, 1, 2, 0, 1, 2):
                for o in cands:
                    if o["_home"] == home and o not in shared:
                        shared.append(o)
                        break
                if len(shared) >= a.shared:
                    break
        for o in shared:
            o["_second"] = (o["_home"] + 1) % 3
        self.shared = shared

    # -- producers and plots ------------------------------------------------

    def make_producers(self):
        rnd = self.rng("producers")
        a = self.a
        n = a.producers
        norg = len(self.orgs)
        # Org sizes: a skewed spread, every org at least 3 producers.
        w = [rnd.lognormvariate(0, 0.6) for _ in range(norg)]
        s = sum(w)
        sizes = [max(3, int(n * x / s)) for x in w]
        i = 0
        while sum(sizes) < n:
            sizes[i % norg] += 1
            i += 1
        while sum(sizes) > n:
            j = max(range(norg), key=lambda k: sizes[k])
            sizes[j] -= 1
        if a.dds_plots:
            # The first shipping org holds the bench's plots.
            o = self.ship_orgs[0]
            k = self.orgs.index(o)
            sizes[k] = max(sizes[k], int(math.ceil(a.dds_plots / 2.0)) + 5)
        self.producers = []
        for o, size in zip(self.orgs, sizes):
            o["_producers"] = []
            region = o["_region"]
            ckind = COMMUNITY_KIND[region]
            comms = ["%s %s" % (rnd.choice(ckind), rnd.choice(PLACES))
                     for _ in range(max(1, size // 8 + 1))]
            for _ in range(size):
                sex = "F" if rnd.random() < 0.36 else "M"
                first = rnd.choice(F_NAMES if sex == "F" else M_NAMES)
                if rnd.random() < 0.3:
                    first += " " + rnd.choice(F_NAMES if sex == "F"
                                              else M_NAMES)
                sn = SURNAMES[region]
                name = "%s %s %s" % (first, rnd.choice(sn), rnd.choice(sn))
                p = {"kind": "producer", "org": o["id"],
                     "dni": self.new_dni(rnd), "name": name, "sex": sex}
                if rnd.random() < 0.85:
                    p["community"] = rnd.choice(comms)
                if rnd.random() < 0.6:
                    p["phone"] = "9%08d" % rnd.randrange(10 ** 8)
                if rnd.random() < 0.8:
                    p["birth_year"] = rnd.randrange(1950, 2003)
                p = self.add(p, o["_home"], 1, rnd)
                p["_plots"] = []
                o["_producers"].append(p)
                self.producers.append(p)

    def place_blocks(self, nplots):
        """A block of cells per org near its district centre; blocks never
        overlap (spiral search over placed rectangles, 1 km margin)."""
        placed = []
        for o in self.orgs:
            n = nplots[o["id"]]
            side = max(2, int(math.ceil(math.sqrt(n * 1.15))))
            size = side * CELL_M
            lon0, lat0 = o["_centre"]
            kx, ky = local_scale(lat0)
            r = 0.0
            ang = 0.0
            while True:
                cx = r * math.cos(ang)
                cy = r * math.sin(ang)
                clon = lon0 + math.degrees(cx / kx)
                clat = lat0 + math.degrees(cy / ky)
                hw = math.degrees((size / 2 + 1000) / kx)
                hh = math.degrees((size / 2 + 1000) / ky)
                box = (clon - hw, clat - hh, clon + hw, clat + hh)
                if all(box[2] < b[0] or box[0] > b[2] or box[3] < b[1] or
                       box[1] > b[3] for b in placed):
                    break
                ang += 0.7
                r += 150.0
            placed.append(box)
            o["_block"] = (clon, clat, side)
            o["_cells"] = [(i, j) for i in range(side) for j in range(side)]
            self.rng("cells:" + o["id"]).shuffle(o["_cells"])

    def cell_centre(self, o):
        clon, clat, side = o["_block"]
        i, j = o["_cells"].pop()
        x = (i - (side - 1) / 2.0) * CELL_M
        y = (j - (side - 1) / 2.0) * CELL_M
        return to_lonlat(x, y, clon, clat)

    def polygon(self, rnd, lon0, lat0, ha, convex=False, shift=(0.0, 0.0)):
        """A simple counter-clockwise ring of about ha hectares, centred
        shift metres from (lon0, lat0)."""
        nv = rnd.randrange(6, 13)
        # Vertices at increasing angles around the centre (a star-shaped
        # ring is simple), at least 2*pi/nv - 0.4 rad apart.
        angs = [2 * math.pi * k / nv + rnd.uniform(-0.2, 0.2)
                for k in range(nv)]
        lo = 0.92 if convex else 0.7
        rad = [rnd.uniform(lo, 1.0) for _ in range(nv)]
        asp = rnd.uniform(1.0, 1.6)
        rot = rnd.uniform(0, math.pi)
        pts = []
        for t, f in zip(angs, rad):
            x, y = f * math.cos(t) * asp, f * math.sin(t) / asp
            pts.append((x * math.cos(rot) - y * math.sin(rot),
                        x * math.sin(rot) + y * math.cos(rot)))
        if convex:
            pts = convex_hull(pts)
        unit = abs(shoelace(pts))
        k = math.sqrt(ha * 10000.0 / unit)
        ring = [to_lonlat(x * k + shift[0], y * k + shift[1], lon0, lat0)
                for x, y in pts]
        if shoelace(ring) < 0:
            ring.reverse()
        ring.append(ring[0])
        return [list(p) for p in ring]

    def plot_record(self, rnd, p, o, geom, ha, phase, node, crop=None):
        crop = crop or o["_crop"]
        rec = {"kind": "plot", "org": o["id"], "producer": p["id"],
               "crop": crop, "geometry": geom}
        if geom["type"] == "Point" or rnd.random() < 0.95:
            rec["area_ha"] = ha
        rec["accuracy_m"] = round(rnd.uniform(2.0, 8.0), 1)
        lo, hi = ALTITUDE[crop]
        rec["altitude_m"] = rnd.randrange(lo, hi)
        rec["tenure"] = rnd.choice(["owned", "owned", "owned", "possession",
                                    "communal", "leased"])
        rec["captured_at"] = "2025-%02d-%02dT%02d:%02d:00-05:00" % (
            rnd.randrange(1, 4), rnd.randrange(1, 28), rnd.randrange(7, 17),
            rnd.randrange(60))
        r = self.add(rec, node, phase, rnd)
        return r

    def make_plots(self):
        rnd = self.rng("plots")
        a = self.a
        per = {}
        for p in self.producers:
            o = self.byid[p["org"]]
            if a.dds_plots and o is self.ship_orgs[0]:
                per[p["id"]] = 2
            else:
                per[p["id"]] = rnd.choice(a.plot_mix)
        if a.dds_plots:
            # Exactly dds_plots plots in the bench org.
            o = self.ship_orgs[0]
            left = a.dds_plots
            for p in o["_producers"]:
                per[p["id"]] = min(2, left)
                left -= per[p["id"]]
        if a.plots:
            # Exactly --plots plots in all, the planted ones included.
            target = a.plots - a.overlaps - (a.dup_plots if self.shared
                                             else 0)
            free = [p["id"] for p in self.producers
                    if not (a.dds_plots and
                            self.byid[p["org"]] is self.ship_orgs[0])]
            total = sum(per.values())
            while total != target and free:
                pid = rnd.choice(free)
                if total > target and per[pid] > 1:
                    per[pid] -= 1
                    total -= 1
                elif total < target and per[pid] < 4:
                    per[pid] += 1
                    total += 1
        nplots = {}
        for o in self.orgs:
            nplots[o["id"]] = sum(per[p["id"]] for p in o["_producers"]) + 2
        self.place_blocks(nplots)
        self.plots = []
        for o in self.orgs:
            for p in o["_producers"]:
                for _ in range(per[p["id"]]):
                    lon, lat = self.cell_centre(o)
                    lo, hi = PLOT_HA[o["_crop"]]
                    ha = math.exp(rnd.uniform(math.log(lo), math.log(hi)))
                    if rnd.random() < 0.04:
                        ha = rnd.uniform(6.0, 10.0)  # a large plot
                    if ha <= 4 and rnd.random() < 0.35:
                        jx, jy = rnd.uniform(-150, 150), rnd.uniform(-150, 150)
                        geom = {"type": "Point", "coordinates": list(
                            to_lonlat(jx, jy, lon, lat))}
                        declared = round(ha, 2)
                    else:
                        ring = self.polygon(rnd, lon, lat, ha)
                        geom = {"type": "Polygon", "coordinates": [ring]}
                        measured = ring_area_ha(ring)
                        declared = round(measured * rnd.uniform(0.98, 1.02),
                                         2)
                    pl = self.plot_record(rnd, p, o, geom, declared, 1,
                                          o["_home"])
                    pl["_cell"] = (lon, lat)
                    p["_plots"].append(pl)
                    self.plots.append(pl)

    def plant_overlaps(self):
        """Pairs of plots of different producers that overlap by 12-60% of
        the smaller: the second plot is an extra plot of another producer,
        drawn over the first (both convex, so the truth is exact)."""
        rnd = self.rng("overlaps")
        a = self.a
        self.overlaps = []
        if a.overlaps == 0:
            return
        cands = []
        # The first pair lies upstream of a shipment.
        first = self.ship_orgs[-1] if self.ship_orgs else None
        orgs = [o for o in self.orgs if o not in self.shared]
        for k in range(a.overlaps):
            o = first if k == 0 and first else rnd.choice(orgs)
            polys = [pl for p in o["_producers"] for pl in p["_plots"]
                     if pl["geometry"]["type"] == "Polygon" and
                     not pl.get("_planted")]
            if not polys:
                continue
            pa = rnd.choice(polys)
            pa["_planted"] = True
            # Redraw A convex, in its own cell.
            lon, lat = pa["_cell"]
            ha_a = rnd.uniform(1.0, 5.0)
            ring_a = self.polygon(rnd, lon, lat, ha_a, convex=True)
            pa["geometry"] = {"type": "Polygon", "coordinates": [ring_a]}
            pa["area_ha"] = round(ring_area_ha(ring_a), 2)
            # B: a producer of an org in the same district (or this one).
            near = [x for x in self.orgs if x["_centre"] == o["_centre"] and
                    x not in self.shared]
            ob = rnd.choice(near)
            pb = rnd.choice([p for p in ob["_producers"]
                             if p["id"] != pa["producer"]])
            for _ in range(200):
                ha_b = rnd.uniform(0.8, 4.0)
                rb = math.sqrt(ha_b * 10000 / math.pi)
                d = rnd.uniform(0.3, 1.4) * rb
                t = rnd.uniform(0, 2 * math.pi)
                ring_b = self.polygon(rnd, lon, lat, ha_b, convex=True,
                                      shift=(d * math.cos(t),
                                             d * math.sin(t)))
                ov = overlap_ha(ring_a, ring_b)
                small = min(ring_area_ha(ring_a), ring_area_ha(ring_b))
                if 0.12 <= ov / small <= 0.6:
                    break
            else:
                raise SystemExit("programme.py: cannot plant an overlap")
            geom = {"type": "Polygon", "coordinates": [ring_b]}
            plb = self.plot_record(rnd, pb, ob, geom,
                                   round(ring_area_ha(ring_b), 2), 1,
                                   ob["_home"], crop=o["_crop"])
            plb["_planted"] = True
            pb["_plots"].append(plb)
            self.plots.append(plb)
            self.overlaps.append({
                "plots": sorted([pa["id"], plb["id"]]),
                "producers": [self.byid[x]["producer"] for x in
                              sorted([pa["id"], plb["id"]])],
                "overlap_ha": round(ov, 4),
                "overlap_pct": round(100.0 * ov / small, 2)})

    # -- programme: services, sessions, commitments ---------------------------

    def make_services(self):
        rnd = self.rng("services")
        a = self.a
        self.services = []
        for region in REGIONS:
            crops = sorted({c for d in REGIONS[region] for c in d[4]})
            topics = [("production", t) for c in crops for t in TOPICS[c]]
            topics += TOPICS_COMMON
            reps = a.service_cohorts
            for rep in range(reps):
                for area, title in topics:
                    npl = rnd.choice([1, 2, 2, 3, 3, 4, 4])
                    per_h = rnd.choice([3, 4, 4, 5, 6])
                    t = "%s - %s" % (title, region)
                    if reps > 1:
                        t += " (grupo %d)" % (rep + 1)
                    s = {"kind": "service", "org": self.network["id"],
                         "title": t, "area": area,
                         "provider": rnd.choice(PROVIDERS[region]),
                         "sessions_planned": npl}
                    if rnd.random() < 0.9:
                        s["hours"] = npl * per_h
                    s = self.add(s, "hub", 0, rnd)
                    s["_region"] = region
                    s["_crop"] = next((c for c in crops
                                       if title in TOPICS[c]), None)
                    self.services.append(s)

    def make_commitments(self):
        rnd = self.rng("commitments")
        a = self.a
        self.commit = {}  # org id -> {service id: accepted}
        for o in self.orgs:
            svcs = [s for s in self.services if s["_region"] == o["_region"]
                    and s["_crop"] in (None, o["_crop"])]
            if a.commit_all:
                chosen = svcs
            else:
                k = min(len(svcs), rnd.choice([2, 3, 3, 4]))
                chosen = rnd.sample(svcs, k)
            self.commit[o["id"]] = {}
            for s in chosen:
                acc = a.commit_all or rnd.random() < 0.9
                c = {"kind": "commitment", "org": o["id"],
                     "service": s["id"], "accepted": acc}
                if acc or rnd.random() < 0.5:
                    c["signed_by"] = "Presidente del Consejo de " \
                                     "Administración"
                    c["signed_at"] = "2025-01-%02d" % rnd.randrange(6, 31)
                self.add(c, "hub", 0, rnd)
                self.commit[o["id"]][s["id"]] = acc

    def make_sessions(self):
        rnd = self.rng("sessions")
        self.sessions = []
        for s in self.services:
            npl = s["sessions_planned"]
            r = rnd.random()
            held = npl if r < 0.75 else (max(1, npl - 1) if r < 0.95 else 0)
            region = s["_region"]
            prov, dist, lon, lat, _ = rnd.choice(REGIONS[region])
            month = rnd.randrange(2, 11)
            for k in range(held):
                m = min(11, month + k)
                day = rnd.randrange(3, 27)
                h0 = rnd.choice([8, 9, 9, 10, 14])
                dur = rnd.choice([2.5, 3, 3, 4, 4, 5, 6])
                end_h = h0 + dur
                rec = {"kind": "session", "org": self.network["id"],
                       "service": s["id"],
                       "starts_at": "2025-%02d-%02dT%02d:00:00-05:00" % (
                           m, day, h0)}
                if rnd.random() < 0.85:
                    rec["ends_at"] = "2025-%02d-%02dT%02d:%02d:00-05:00" % (
                        m, day, int(end_h), int(round((end_h % 1) * 60)))
                if rnd.random() < 0.9:
                    rec["mode"] = "in-person"
                    rec["place"] = {"type": "Point", "coordinates": list(
                        to_lonlat(rnd.uniform(-3000, 3000),
                                  rnd.uniform(-3000, 3000), lon, lat))}
                else:
                    rec["mode"] = "virtual"
                rec["facilitator"] = "Ing. %s %s" % (
                    rnd.choice(F_NAMES + M_NAMES),
                    rnd.choice(SURNAMES[region]))
                rec = self.add(rec, REGION_NODE[region], 1, rnd)
                rec["_hours"] = (dur if "ends_at" in rec else
                                 (s["hours"] / npl if "hours" in s else 0.0))
                rec["_month"] = "2025-%02d" % m
                self.sessions.append(rec)
        self.sessions_of = {}
        for x in self.sessions:
            self.sessions_of.setdefault(x["service"], []).append(x)

    # -- attendance ---------------------------------------------------------

    def make_attendance(self):
        rnd = self.rng("attendance")
        a = self.a
        statuses = ["present", "left-early", "proxy", "absent"]
        weights = [0.40, 0.06, 0.04, 0.50]
        cands = []  # (org, session, person-dict or None)
        neighbours = {}
        for o in self.orgs:
            accepted = [sid for sid, acc in self.commit[o["id"]].items()
                        if acc]
            # A few orgs also turn up at a service they did not commit to.
            extra = []
            if rnd.random() < 0.08:
                others = [s["id"] for s in self.services
                          if s["_region"] == o["_region"] and
                          s["id"] not in self.commit[o["id"]]]
                if others:
                    extra = [rnd.choice(others)]
            pool = [{"dni": self.new_dni(rnd), "name": "%s %s %s" % (
                rnd.choice(F_NAMES + M_NAMES),
                rnd.choice(SURNAMES[o["_region"]]),
                rnd.choice(SURNAMES[o["_region"]]))} for _ in range(3)]
            neighbours[o["id"]] = pool
            for sid in accepted + extra:
                for ses in self.sessions_of.get(sid, []):
                    for p in o["_producers"]:
                        cands.append((o, ses, p, None))
                    for nb in pool:
                        cands.append((o, ses, None, nb))
        if a.attendance:
            # The planted duplicates below count towards the N.
            n = a.attendance - (a.att_dups if self.shared else 0)
            if len(cands) < n:
                raise SystemExit("programme.py: only %d attendance "
                                 "candidates for --attendance %d; add "
                                 "--producers" % (len(cands), a.attendance))
            idx = sorted(rnd.sample(range(len(cands)), n))
            chosen = [cands[i] for i in idx]
        else:
            chosen = [c for c in cands
                      if (c[2] is not None and rnd.random() < 0.9) or
                      (c[2] is None and rnd.random() < 0.25)]
        self.attendance = []
        for o, ses, p, nb in chosen:
            st = (rnd.choices(statuses, weights)[0] if p is not None
                  else rnd.choice(["present", "present", "left-early"]))
            rec = {"kind": "attendance", "org": o["id"],
                   "session": ses["id"], "status": st}
            if p is not None:
                rec["producer"] = p["id"]
            else:
                rec["dni"] = nb["dni"]
                rec["name"] = nb["name"]
            rec = self.add(rec, o["_home"], 2, rnd)
            self.attendance.append(rec)
        # Planted: the same person at the same session recorded again on
        # the second node of a shared org.
        self.att_dups = []
        if self.shared and a.att_dups:
            pool = [r for r in self.attendance
                    if self.byid[r["org"]] in self.shared]
            rnd.shuffle(pool)
            reg = [r for r in pool if "producer" in r]
            unreg = [r for r in pool if "dni" in r]
            picks = reg[:max(0, a.att_dups - 2)] + unreg[:2]
            for r in picks:
                o = self.byid[r["org"]]
                d = {k: v for k, v in r.items() if not k.startswith("_")
                     and k != "id"}
                d["status"] = rnd.choice(statuses)
                d = self.add(d, o["_second"], 2, rnd)
                self.attendance.append(d)
                self.att_dups.append({"session": r["session"],
                                      "person": r.get("producer") or
                                      "dni:" + r["dni"],
                                      "records": [r["id"], d["id"]]})

    # -- lots ---------------------------------------------------------------

    def new_code(self, o, tag, n):
        code = "%s-%s%04d" % (o["_code"], tag, n)
        assert code not in self.codes
        self.codes.add(code)
        return code

    def lot(self, rnd, o, tag, product, kg_t, node, phase, producer=None,
            plots=None, quality=None):
        o["_seq"] = o.get("_seq", 0) + 1
        rec = {"kind": "lot", "org": o["id"],
               "code": self.new_code(o, tag, o["_seq"]),
               "product": product, "kg": tenths(kg_t)}
        if producer is not None:
            rec["producer"] = producer
        if plots:
            rec["plots"] = plots
        if quality:
            rec["quality"] = quality
        rec = self.add(rec, node, phase, rnd)
        rec["_t"] = kg_t
        return rec

    def event(self, rnd, o, typ, lot, node, phase, inputs=None, outputs=None,
              **kw):
        rec = {"kind": "lot_event", "org": o["id"], "lot": lot["id"],
               "type": typ}
        if inputs is not None:
            rec["inputs"] = [{"lot": x["id"], "kg": tenths(t)}
                             for x, t in inputs]
        if outputs is not None:
            rec["outputs"] = [{"lot": x["id"], "kg": tenths(t)}
                              for x, t in outputs]
        rec.update(kw)
        rec = self.add(rec, node, phase, rnd)
        rec["_in"] = [(x["id"], t) for x, t in (inputs or [])]
        rec["_out"] = [(x["id"], t) for x, t in (outputs or [])]
        for x, t in inputs or []:
            x["_used"] = x.get("_used", 0) + t
        return rec

    def make_received(self):
        rnd = self.rng("lots")
        self.lots = []
        self.events = []
        for o in self.orgs:
            o["_received"] = []
            crop = o["_crop"]
            for p in o["_producers"]:
                plots = [pl["id"] for pl in p["_plots"]
                         if pl["crop"] == crop]
                if not plots:
                    continue
                bench = self.a.dds_plots and o is self.ship_orgs[0]
                nl = 1 if bench else rnd.choice([1, 1, 2])
                for _ in range(nl):
                    product = PRODUCT[crop]
                    if crop == "coffee" and rnd.random() < 0.2 and not bench:
                        product = "coffee-cherry"
                    kg_t = {"coffee-parchment": rnd.randrange(2, 31) * 460,
                            "coffee-cherry": rnd.randrange(4000, 25000),
                            "cacao-wet": rnd.randrange(1500, 12000),
                            "banana": rnd.randrange(25, 110) * 181,
                            "quinoa": rnd.randrange(1500, 15000)}[product]
                    kg_t += rnd.randrange(0, 10)
                    q = None
                    if product == "coffee-parchment":
                        q = {"humidity_pct": round(rnd.uniform(10.5, 12.5),
                                                   1),
                             "yield_factor": round(rnd.uniform(0.78, 0.83), 3),
                             "cup_score": round(rnd.uniform(80, 86.5), 2)}
                    elif product == "cacao-wet":
                        q = {"variety": rnd.choice(["CCN-51", "Chuncho",
                                                    "Blanco de Piura",
                                                    "Criollo nativo"])}
                    use = plots if len(plots) <= 2 or bench else \
                        rnd.sample(plots, rnd.randrange(1, len(plots) + 1))
                    lt = self.lot(rnd, o, "R", product, kg_t, o["_home"], 1,
                                  producer=p["id"], plots=sorted(use),
                                  quality=q)
                    self.lots.append(lt)
                    o["_received"].append(lt)
                    self.events.append(self.event(rnd, o, "receive", lt,
                                                  o["_home"], 1))

    def merge_all(self, rnd, o, items, product, node, phase, tag="M"):
        """Merge (lot, kg_t) items, in chunks of at most 400 inputs (the
        schema allows 1000); returns the merged lot."""
        while len(items) > 1 or (items and items[0][1] != items[0][0]["_t"]):
            chunks = [items[i:i + 400] for i in range(0, len(items), 400)]
            nxt = []
            for ch in chunks:
                tot = sum(t for _, t in ch)
                m = self.lot(rnd, o, tag, product, tot, node, phase)
                self.lots.append(m)
                self.events.append(self.event(rnd, o, "merge", m, node,
                                              phase, inputs=ch,
                                              outputs=[(m, tot)]))
                nxt.append((m, tot))
            items = nxt
        return items[0][0]

    def make_chains(self):
        rnd = self.rng("chains")
        self.shipments = []
        self.claims = []
        buyers = {"coffee": [0, 1], "cacao": [0, 2], "banana": [3, 0],
                  "quinoa": [4, 0]}
        for o in self.orgs:
            node = o["_home"]
            rec = [x for x in o["_received"]]
            if o in self.shared:
                continue
            if not o["_ship"]:
                # Stock consolidation: half the lots merged, nothing shipped.
                pool = [x for x in rec if x["product"] == PRODUCT[o["_crop"]]]
                if len(pool) >= 4 and rnd.random() < 0.5:
                    half = pool[:len(pool) // 2]
                    self.merge_all(rnd, o, [(x, x["_t"]) for x in half],
                                   PRODUCT[o["_crop"]], node, 2)
                continue
            bench = self.a.dds_plots and o is self.ship_orgs[0]
            crop = o["_crop"]
            pool = []
            for x in rec:
                if x["product"] == "coffee-cherry":
                    out_t = int(x["_t"] * rnd.uniform(0.19, 0.22))
                    cp = self.lot(rnd, o, "P", "coffee-parchment", out_t,
                                  node, 2)
                    self.lots.append(cp)
                    self.events.append(self.event(
                        rnd, o, "transform", cp, node, 2,
                        inputs=[(x, x["_t"])], outputs=[(cp, out_t)]))
                    pool.append((cp, out_t))
                else:
                    t = x["_t"]
                    if not bench and rnd.random() < 0.25:
                        t = int(t * rnd.uniform(0.5, 0.9))  # part stays
                    pool.append((x, t))
            product = PRODUCT[crop]
            m = self.merge_all(rnd, o, pool, product, node, 2)
            final = m
            if crop == "coffee":
                out_t = int(m["_t"] * rnd.uniform(0.78, 0.82))
                g = self.lot(rnd, o, "G", "coffee-green", out_t, node, 2)
                self.lots.append(g)
                self.events.append(self.event(
                    rnd, o, "transform", g, node, 2, inputs=[(m, m["_t"])],
                    outputs=[(g, out_t)]))
                final = g
            elif crop == "cacao":
                out_t = int(m["_t"] * rnd.uniform(0.38, 0.42))
                d = self.lot(rnd, o, "D", "cacao-dry", out_t, node, 2)
                self.lots.append(d)
                self.events.append(self.event(
                    rnd, o, "transform", d, node, 2, inputs=[(m, m["_t"])],
                    outputs=[(d, out_t)]))
                final = d
            ships = [final]
            if not bench and rnd.random() < 0.45:
                t1 = int(final["_t"] * rnd.uniform(0.55, 0.65))
                t2 = final["_t"] - t1
                s1 = self.lot(rnd, o, "S", final["product"], t1, node, 2)
                s2 = self.lot(rnd, o, "S", final["product"], t2, node, 2)
                self.lots += [s1, s2]
                self.events.append(self.event(
                    rnd, o, "split", final, node, 2,
                    inputs=[(final, final["_t"])],
                    outputs=[(s1, t1), (s2, t2)]))
                ships = [s1, s2]
            for k, x in enumerate(ships):
                firm = self.firms[buyers[crop][k % 2]]
                carrier = rnd.choice(CARRIERS)
                ev = self.event(
                    rnd, o, "ship", x, node, 2, buyer=firm["id"],
                    destination=rnd.choice(DESTINATIONS),
                    container=iso6346(carrier + "%06d" %
                                      rnd.randrange(10 ** 6)),
                    document="DAM 118-2025-40-%06d" % rnd.randrange(10 ** 6))
                self.events.append(ev)
                self.shipments.append((x, ev, o))
        # A buyer's claim against one shipment.
        if self.shipments and not self.a.dds_plots:
            x, ev, o = self.shipments[0]
            c = self.event(rnd, o, "claim", x, o["_home"], 2,
                           reason=rnd.choice(CLAIM_REASONS))
            self.events.append(c)
            self.claims.append(c)

    def plant_overconsumption(self):
        """Both nodes of a shared org take 70% of one lot they both hold,
        each together with a lot of its own."""
        rnd = self.rng("overconsumed")
        self.overconsumed = []
        k = 0
        for o in self.shared:
            if k >= self.a.overconsumed:
                break
            rec = [x for x in o["_received"] if x["product"] ==
                   PRODUCT[o["_crop"]] and not x.get("_used")]
            if len(rec) < 3:
                continue
            lt, xa, xb = rec[0], rec[1], rec[2]
            take = int(lt["_t"] * 0.7)
            evs = []
            for node, other in ((o["_home"], xa), (o["_second"], xb)):
                tot = take + other["_t"]
                m = self.lot(rnd, o, "M", lt["product"], tot, node, 3)
                self.lots.append(m)
                ev = self.event(rnd, o, "merge", m, node, 3,
                                inputs=[(lt, take), (other, other["_t"])],
                                outputs=[(m, tot)])
                self.events.append(ev)
                evs.append(ev["id"])
            self.overconsumed.append({
                "lot": lt["id"], "code": lt["code"], "kg": lt["kg"],
                "consumed": round(2 * take / 10.0, 1), "events": sorted(evs),
                "org": o["id"], "nodes": [o["_home"], o["_second"]],
                "take_kg": tenths(take)})
            k += 1

    def plant_duplicates(self):
        """Cross-device duplicates in shared orgs: producers with one DNI
        (phase 1 on the second node), and plots walked twice (phase 2 on
        the second node, of a producer it got from the first)."""
        rnd = self.rng("duplicates")
        self.dup_producers = []
        self.dup_plots = []
        if not self.shared:
            return
        for o in self.shared[:self.a.dup_producers]:
            p = rnd.choice(o["_producers"])
            d = {k: v for k, v in p.items() if not k.startswith("_") and
                 k not in ("id",)}
            # The second technician spells the name without accents.
            d["name"] = d["name"].translate(str.maketrans(
                "áéíóúÁÉÍÓÚ", "aeiouAEIOU"))
            d.pop("phone", None)
            d = self.add(d, o["_second"], 1, rnd)
            d["_plots"] = []
            self.dup_producers.append({"kind": "producer", "field": "dni",
                                       "value": p["dni"], "org": o["id"],
                                       "ids": sorted([p["id"], d["id"]])})
        polys = [(o, pl) for o in self.shared for p in o["_producers"]
                 for pl in p["_plots"] if pl["geometry"]["type"] == "Polygon"
                 and not pl.get("_planted")]
        points = [(o, pl) for o in self.shared for p in o["_producers"]
                  for pl in p["_plots"] if pl["geometry"]["type"] == "Point"]
        picks = []
        if polys and self.a.dup_plots > 0:
            picks.append(rnd.choice(polys))
        if points and self.a.dup_plots > 1:
            picks.append(rnd.choice(points))
        for o, pl in picks:
            g = pl["geometry"]
            if g["type"] == "Polygon":
                ring = g["coordinates"][0]
                # The same boundary walked again: within half a metre.
                new = [[round(x + rnd.uniform(-4e-6, 4e-6), 6),
                        round(y + rnd.uniform(-4e-6, 4e-6), 6)]
                       for x, y in ring[:-1]]
                if shoelace(new) < 0:
                    new.reverse()
                new.append(list(new[0]))
                ng = {"type": "Polygon", "coordinates": [new]}
                area = round(ring_area_ha(new), 2)
            else:
                ng = {"type": "Point", "coordinates": list(g["coordinates"])}
                area = pl["area_ha"]
            p = self.byid[pl["producer"]]
            d = self.plot_record(rnd, p, o, ng, area, 2, o["_second"],
                                 crop=pl["crop"])
            d["_planted"] = True
            self.plots.append(d)
            self.dup_plots.append({"plots": sorted([pl["id"], d["id"]]),
                                   "producers": [p["id"], p["id"]],
                                   "geometry": g["type"]})

    # -- truth --------------------------------------------------------------

    def lineage(self):
        lots = {x["id"]: x for x in self.lots}
        made_by = {}
        consumed_by = {}
        for e in self.events:
            for lid, t in e["_out"]:
                made_by.setdefault(lid, []).append(e)
            for lid, t in e["_in"]:
                consumed_by.setdefault(lid, []).append(e)
        return lots, made_by, consumed_by

    def trace_up(self, x):
        lots, made_by, _ = self.lineage()
        # Topological order from x towards the leaves (DFS post-order).
        order, seen = [], set()

        def visit(lid):
            if lid in seen:
                return
            seen.add(lid)
            for e in made_by.get(lid, []):
                for k, _ in e["_in"]:
                    visit(k)
            order.append(lid)
        visit(x["id"])
        need = {x["id"]: x["_t"] / 10.0}
        for lid in reversed(order):
            n = need.get(lid, 0.0)
            evs = made_by.get(lid, [])
            tot_l = sum(t for e in evs for l2, t in e["_out"] if l2 == lid)
            for e in evs:
                o_l = sum(t for l2, t in e["_out"] if l2 == lid)
                so = sum(t for _, t in e["_out"])
                for k, ik in e["_in"]:
                    need[k] = need.get(k, 0.0) + \
                        ik * n * (o_l / tot_l) / so
        leaves = [l for l in need if l not in made_by]
        total = sum(need[l] for l in leaves)
        prods, plots = {}, {}
        for l in leaves:
            lt = lots[l]
            prods[lt["producer"]] = prods.get(lt["producer"], 0.0) + need[l]
            for pl in lt.get("plots", []):
                plots[pl] = plots.get(pl, 0.0) + need[l] / len(lt["plots"])
        return {
            "lot": x["id"], "code": x["code"], "kg": x["kg"],
            "lots": {l: round(v, 6) for l, v in sorted(need.items())},
            "leaves": sorted(leaves),
            "producers": {p: round(v, 6) for p, v in sorted(prods.items())},
            "plots": {p: round(v, 6) for p, v in sorted(plots.items())},
            "total_kg": round(total, 6)}

    def trace_down(self, producer_id):
        lots, made_by, consumed_by = self.lineage()
        start = [l for l, x in lots.items()
                 if x.get("producer") == producer_id or any(
                     self.byid[p]["producer"] == producer_id
                     for p in x.get("plots", []))]
        share = {l: 1.0 for l in start}
        # Kahn over the lots reachable from the start set.
        reach, stack = set(start), list(start)
        while stack:
            l = stack.pop()
            for e in consumed_by.get(l, []):
                for j, _ in e["_out"]:
                    if j not in reach:
                        reach.add(j)
                        stack.append(j)
        indeg = {l: 0 for l in reach}
        for l in reach:
            for e in made_by.get(l, []):
                for k, _ in e["_in"]:
                    if k in reach:
                        indeg[l] += 1
        ready = [l for l in reach if indeg[l] == 0]
        done = set()
        while ready:
            l = ready.pop()
            done.add(l)
            for e in consumed_by.get(l, []):
                si = sum(t for _, t in e["_in"])
                ik = sum(t for k, t in e["_in"] if k == l)
                for j, _ in e["_out"]:
                    share[j] = min(1.0, share.get(j, 0.0) +
                                   share.get(l, 0.0) * ik / si)
                    indeg[j] -= 1
                    if indeg[j] == 0:
                        ready.append(j)
        ships, claims = {}, []
        for e in self.events:
            if e["type"] == "ship" and share.get(e["lot"], 0) > 0:
                ships[e["id"]] = {"lot": e["lot"], "share": share[e["lot"]],
                                  "kg": round(share[e["lot"]] *
                                              lots[e["lot"]]["_t"] / 10.0, 6)}
            if e["type"] == "claim" and share.get(e["lot"], 0) > 0:
                claims.append(e["id"])
        return {"producer": producer_id, "start": sorted(start),
                "shipments": ships, "claims": sorted(claims)}

    def report_truth(self, by):
        """The attendance report (notes/domain.md) grouped by org or by
        service."""
        rank = {"present": 3, "left-early": 2, "proxy": 1, "absent": 0}
        best = {}
        for r in self.attendance:
            person = r.get("producer") or "dni:" + r["dni"]
            key = (r["session"], person)
            if key not in best or rank[r["status"]] > rank[best[key]
                                                           ["status"]]:
                best[key] = r
        merged = len(self.attendance) - len(best)
        svc = {s["id"]: s for s in self.services}
        ses = {s["id"]: s for s in self.sessions}
        rows = {}

        def row(k):
            if k not in rows:
                rows[k] = {"attendances": 0, "attended": 0, "absent": 0,
                           "persons": {}, "sessions": set(), "hours": 0.0,
                           "att_services": set()}
            return rows[k]
        tot = {"attendances": 0, "attended": 0, "absent": 0, "persons": {},
               "sessions": set(), "hours": 0.0, "att_services": set()}
        for (sid, person), r in best.items():
            s = ses[sid]
            k = r["org"] if by == "org" else s["service"]
            for g in (row(k), tot):
                g["attendances"] += 1
                if r["status"] == "absent":
                    g["absent"] += 1
                    continue
                g["attended"] += 1
                sex = None
                if "producer" in r:
                    sex = self.byid[r["producer"]]["sex"]
                g["persons"][person] = sex
                g["sessions"].add(sid)
                h = s["_hours"]
                g["hours"] += h / 2.0 if r["status"] == "left-early" else h
                g["att_services"].add(s["service"])
        planned = {}
        committed = {}
        if by == "org":
            for oid, m in self.commit.items():
                acc = [sid for sid, ok in m.items() if ok]
                if acc:
                    committed[oid] = set(acc)
                    planned[oid] = sum(svc[x]["sessions_planned"]
                                       for x in acc)
                    row(oid)
        else:
            # Every service is a row: it planned its sessions.
            for s in self.services:
                planned[s["id"]] = s["sessions_planned"]
                row(s["id"])

        def metrics(g):
            persons = g["persons"]
            known = [v for v in persons.values() if v is not None]
            women = sum(1 for v in known if v == "F")
            return {"attendances": g["attendances"],
                    "attended": g["attended"], "absent": g["absent"],
                    "attendance_rate": round(g["attended"] / g["attendances"],
                                             9) if g["attendances"] else 0,
                    "persons": len(persons), "women": women,
                    "women_share": round(women / len(known), 9)
                    if known else 0,
                    "sessions_held": len(g["sessions"]),
                    "hours": round(g["hours"], 6)}
        out = []
        for k in sorted(rows):
            m = metrics(rows[k])
            m["sessions_planned"] = planned.get(k, 0)
            if by == "org":
                m["org"] = k
                m["org_name"] = self.byid[k]["name"]
                c = committed.get(k, set())
                m["committed_services"] = len(c)
                m["attended_services"] = len(c & rows[k]["att_services"])
            else:
                m["service"] = k
                m["service_title"] = svc[k]["title"]
            out.append(m)
        tm = metrics(tot)
        # Over every group: the report adds each org's (or service's)
        # plan.
        tm["sessions_planned"] = sum(r["sessions_planned"] for r in out)
        if by == "org":
            tm["committed_services"] = sum(r["committed_services"]
                                           for r in out)
            tm["attended_services"] = sum(r["attended_services"]
                                          for r in out)
        return {"by": [by], "rows": out, "totals": tm,
                "duplicates_merged": merged}

    def dds_truth(self, tr):
        plots = {}
        for pid in sorted(tr["plots"]):
            pl = self.byid[pid]
            p = self.byid[pl["producer"]]
            o = self.byid[pl["org"]]
            place = p.get("community") or ", ".join(
                o[k] for k in ("district", "province", "region") if k in o)
            area = pl.get("area_ha")
            plots[pid] = {
                "geometry": geom_key(pl["geometry"]),
                "ProducerName": p["name"], "ProducerCountry": "PE",
                "ProductionPlace": place,
                "Area": round(area, 4) if area is not None else
                round(ring_area_ha(pl["geometry"]["coordinates"][0]), 4),
                "area_declared": area is not None}
        blocking = []
        for f in self.overlaps + self.dup_plots:
            if any(x in tr["plots"] for x in f["plots"]):
                blocking.append(f["plots"])
        return {"plots": plots, "blocking": blocking}

    def make_truth(self):
        t = {"seed": self.seed}
        counts = {}
        for r in self.recs:
            counts[r["kind"]] = counts.get(r["kind"], 0) + 1
        t["counts"] = counts
        t["shipments"] = []
        for x, ev, o in self.shipments:
            tr = self.trace_up(x)
            tr["event"] = ev["id"]
            tr["org"] = o["id"]
            tr["dds"] = self.dds_truth(tr)
            t["shipments"].append(tr)
        # Downstream: producers behind the first shipments (one of them
        # behind the claimed lot), and one producer that shipped nothing.
        downs = []
        seen = set()
        for tr in t["shipments"][:4]:
            for p in sorted(tr["producers"])[:2]:
                if p not in seen:
                    seen.add(p)
                    downs.append(self.trace_down(p))
        idle = [p for p in self.producers
                if not self.byid[p["org"]]["_ship"] and
                self.byid[p["org"]] not in self.shared and p["_plots"]]
        if idle:
            downs.append(self.trace_down(idle[0]["id"]))
        t["downstream"] = downs
        t["claims"] = [c["id"] for c in self.claims]
        t["report_org"] = self.report_truth("org")
        t["report_service"] = self.report_truth("service")
        t["overlaps"] = self.overlaps
        t["duplicate_plots"] = self.dup_plots
        t["overconsumed"] = self.overconsumed
        t["duplicate_producers"] = self.dup_producers
        t["attendance_duplicates"] = self.att_dups
        t["plots_total"] = len(self.plots)
        t["attendance_total"] = len(self.attendance)
        if self.a.dds_plots:
            sh = next(x for x in t["shipments"]
                      if x["org"] == self.ship_orgs[0]["id"])
            t["dds_bench"] = {"lot": sh["lot"], "code": sh["code"],
                              "plots": len(sh["plots"]),
                              "blocking": len(sh["dds"]["blocking"])}
        return t

    # -- output -------------------------------------------------------------

    def scope(self, node):
        s = {self.network["id"]} | {f["id"] for f in self.firms}
        for o in self.orgs:
            if o["_home"] == node or o["_second"] == node:
                s.add(o["id"])
        return s

    def write(self, out):
        os.makedirs(out, exist_ok=True)
        order = ["org", "producer", "plot", "service", "session",
                 "commitment", "lot", "lot_event", "attendance"]

        def sort_key(r):
            return order.index(r["kind"])

        def write_file(name, recs):
            # Kinds in dependency order; within a kind, creation order
            # (events are created in custody order).
            recs = sorted(recs, key=sort_key)
            with open(os.path.join(out, name), "w", encoding="utf-8") as f:
                for r in recs:
                    f.write(dumps(r) + "\n")
            return len(recs)

        def counts(recs):
            c = {}
            for r in recs:
                c[r["kind"]] = c.get(r["kind"], 0) + 1
            return c
        if self.a.single:
            recs = [r for r in self.recs if r["_phase"] <= 2 and
                    (not self.a.kinds or r["kind"] in self.a.kinds)]
            # Phase by phase, each phase in dependency order.
            with open(os.path.join(out, "all.jsonl"), "w",
                      encoding="utf-8") as f:
                for ph in (0, 1, 2):
                    for r in sorted([r for r in recs if r["_phase"] == ph],
                                    key=sort_key):
                        f.write(dumps(r) + "\n")
            nodes = {"single": "all.jsonl", "counts": counts(recs)}
        else:
            hub = [r for r in self.recs if r["_node"] == "hub"]
            write_file("hub.jsonl", hub)
            nodes = {"hub": {"file": "hub.jsonl", "counts": counts(self.recs)},
                     "nodes": []}
            for n in range(3):
                sc = self.scope(n)
                files = {}
                for ph in (1, 2, 3):
                    recs = [r for r in self.recs if r["_node"] == n and
                            r["_phase"] == ph]
                    name = "node%d-%d.jsonl" % (n + 1, ph)
                    write_file(name, recs)
                    files[str(ph)] = name
                expect = {}
                for ph in (0, 1, 2, 3):
                    expect[str(ph)] = counts([r for r in self.recs
                                              if r["_phase"] <= ph and
                                              r["org"] in sc])
                nodes["nodes"].append({
                    "name": NODE_NAMES[n], "orgs": sorted(sc),
                    "files": files, "expect": expect,
                    "regions": sorted(r for r, k in REGION_NODE.items()
                                      if k == n)})
        with open(os.path.join(out, "nodes.json"), "w") as f:
            json.dump(nodes, f, ensure_ascii=False, indent=1)
        with open(os.path.join(out, "truth.json"), "w") as f:
            json.dump(self.truth, f, ensure_ascii=False, indent=1)

    def run(self):
        self.make_orgs()
        self.choose_roles()
        self.make_producers()
        self.make_plots()
        self.plant_overlaps()
        self.make_services()
        self.make_commitments()
        self.make_sessions()
        self.make_received()
        self.make_chains()
        self.plant_overconsumption()
        self.plant_duplicates()
        self.make_attendance()
        self.truth = self.make_truth()
        self.write(self.a.out)


def main():
    ap = argparse.ArgumentParser(
        description="Write a synthetic programme for quipu's tests.")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--orgs", type=int, default=150)
    ap.add_argument("--producers", type=int)
    ap.add_argument("--plots", type=int)
    ap.add_argument("--attendance", type=int)
    ap.add_argument("--ship-orgs", type=int, default=12)
    ap.add_argument("--dds-plots", type=int, default=0)
    ap.add_argument("--single", action="store_true")
    ap.add_argument("--kinds", type=lambda v: v.split(","), default=None)
    ap.add_argument("--overlaps", type=int, default=6)
    ap.add_argument("--shared", type=int, default=6)
    ap.add_argument("--overconsumed", type=int, default=3)
    ap.add_argument("--dup-producers", type=int, default=2)
    ap.add_argument("--dup-plots", type=int, default=2)
    ap.add_argument("--att-dups", type=int, default=12)
    a = ap.parse_args()
    if a.orgs < 10:
        ap.error("--orgs must be at least 10")
    # Plots per producer: 1-3, about 1.5 on average.
    a.plot_mix = [1, 1, 1, 2, 2, 3]
    if a.producers is None:
        a.producers = 1500
        if a.plots:
            a.producers = max(a.orgs * 3, int(round(a.plots / 1.67)))
        if a.attendance:
            a.producers = max(a.producers, int(math.ceil(a.attendance / 12)))
    if a.plots:
        mean = a.plots / float(a.producers)
        lo = max(1, int(mean))
        # Mix of lo and lo+1 plots giving the mean.
        frac = mean - lo
        a.plot_mix = [lo + 1] * int(round(frac * 20)) + \
            [lo] * (20 - int(round(frac * 20)))
    a.commit_all = bool(a.attendance)
    a.service_cohorts = 1
    if a.single:
        a.shared = 0
        a.overconsumed = 0
        a.dup_producers = 0
    if a.dds_plots:
        a.ship_orgs = max(2, a.ship_orgs)
    if a.kinds and not a.single:
        ap.error("--kinds needs --single")
    Programme(a).run()


if __name__ == "__main__":
    main()
