# t_trace.sh - lot traceability on one quipud: a small programme added
# through the CLI (a cooperative, two producers, three plots, lots received
# -> merged -> transformed -> shipped, a claim), then `quipu trace` up and
# down in every format checked against numbers worked out by hand, and
# `quipu dds`: TRACES properties, 6-decimal coordinates, plots once each,
# split files, and the blocking finding of a received lot without plots.
#
# The programme (kg):
#   R-1 1000 (Rosa: plots A1, A2)  R-2 600 (Juan: B1)  R-3 400 (Rosa: A1)
#     --merge-->  M-1 2000  --transform-->  X-1 400 parchment  --ship-->
#     (and a claim against X-1)
#   R-6 100 (Juan: no plots)  R-7 200 (Juan: B1)  --merge-->  M-2 300
# Upstream of X-1: R-1 1000 (50%), R-2 600 (30%), R-3 400 (20%); Rosa 1400
# kg (70%), Juan 600 (30%); plots A1 500+400 = 900, A2 500, B1 600.
# Downstream of R-1: M-1 and X-1 hold 50% of it: 200 kg shipped.

# Plots: A1 about 1 ha near Satipo (declared 1.0), A2 a point (declared
# 0.5 ha) written with short decimals, B1 about 1 ha with no declared area.
TR_A1='{"type":"Polygon","coordinates":[[[-74.6,-11.25],[-74.599085,-11.25],[-74.599085,-11.2491],[-74.6,-11.2491],[-74.6,-11.25]]]}'
TR_A2='{"type":"Point","coordinates":[-74.1,-11.2]}'
TR_B1='{"type":"Polygon","coordinates":[[[-74.58,-11.23],[-74.579085,-11.23],[-74.579085,-11.2291],[-74.58,-11.2291],[-74.58,-11.23]]]}'

# tr_lot CODE PRODUCT KG [EXTRA]: add a lot; prints its id.
tr_lot() {
	add lot '{"org":"'"$ORG"'","code":"'"$1"'","product":"'"$2"'","kg":'"$3"${4:+,$4}'}'
}

# tr_event JSON-FIELDS: add a lot_event; prints its id.
tr_event() {
	add lot_event '{"org":"'"$ORG"'",'"$1"'}'
}

# tr_setup: the programme above on a fresh node; sets the ids.
tr_setup() {
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	qpd_start "$NODE"
	ORG=$(add org '{"ruc":"'"$(ruc 2060333444)"'","name":"Cooperativa Pangoa","type":"cooperative","region":"Junín","province":"Satipo","district":"Pangoa"}')
	BUYER=$(add org '{"ruc":"'"$(ruc 2050111222)"'","name":"Kaffee Import GmbH","type":"firm"}')
	ROSA=$(add producer '{"org":"'"$ORG"'","dni":"41234567","name":"Rosa Quispe","sex":"F","community":"San Martín de Pangoa"}')
	JUAN=$(add producer '{"org":"'"$ORG"'","dni":"42345678","name":"Juan Mamani","sex":"M"}')
	A1=$(add plot '{"org":"'"$ORG"'","producer":"'"$ROSA"'","crop":"coffee","area_ha":1.0,"geometry":'"$TR_A1"'}')
	A2=$(add plot '{"org":"'"$ORG"'","producer":"'"$ROSA"'","crop":"coffee","area_ha":0.5,"geometry":'"$TR_A2"'}')
	B1=$(add plot '{"org":"'"$ORG"'","producer":"'"$JUAN"'","crop":"coffee","geometry":'"$TR_B1"'}')
	R1=$(tr_lot R-1 coffee-cherry 1000 '"producer":"'"$ROSA"'","plots":["'"$A1"'","'"$A2"'"]')
	R2=$(tr_lot R-2 coffee-cherry 600 '"producer":"'"$JUAN"'","plots":["'"$B1"'"]')
	R3=$(tr_lot R-3 coffee-cherry 400 '"producer":"'"$ROSA"'","plots":["'"$A1"'"]')
	M1=$(tr_lot M-1 coffee-cherry 2000)
	X1=$(tr_lot X-1 coffee-parchment 400)
	E1=$(tr_event '"lot":"'"$R1"'","type":"receive"')
	E2=$(tr_event '"lot":"'"$R2"'","type":"receive"')
	E3=$(tr_event '"lot":"'"$R3"'","type":"receive"')
	EM=$(tr_event '"lot":"'"$M1"'","type":"merge","inputs":[{"lot":"'"$R1"'","kg":1000},{"lot":"'"$R2"'","kg":600},{"lot":"'"$R3"'","kg":400}],"outputs":[{"lot":"'"$M1"'","kg":2000}]')
	ET=$(tr_event '"lot":"'"$X1"'","type":"transform","inputs":[{"lot":"'"$M1"'","kg":2000}],"outputs":[{"lot":"'"$X1"'","kg":400}]')
	ES=$(tr_event '"lot":"'"$X1"'","type":"ship","buyer":"'"$BUYER"'","destination":"Hamburg","container":"MSKU1234565","document":"BL-2024-77"')
	EC=$(tr_event '"lot":"'"$X1"'","type":"claim","reason":"mould in two bags"')
	R6=$(tr_lot R-6 coffee-cherry 100 '"producer":"'"$JUAN"'"')
	R7=$(tr_lot R-7 coffee-cherry 200 '"producer":"'"$JUAN"'","plots":["'"$B1"'"]')
	M2=$(tr_lot M-2 coffee-cherry 300)
	tr_event '"lot":"'"$M2"'","type":"merge","inputs":[{"lot":"'"$R6"'","kg":100},{"lot":"'"$R7"'","kg":200}],"outputs":[{"lot":"'"$M2"'","kg":300}]' >/dev/null
	export ORG BUYER ROSA JUAN A1 A2 B1 R1 R2 R3 M1 X1 E1 E2 E3 EM ET ES EC R6 R7 M2
}

qp_case trace_up
case_trace_up() {
	tr_setup
	q -d "$NODE" trace X-1 --format json >up.json
	python3 - up.json <<'EOF' || fail "trace X-1 --format json"
import json, os, re, sys
t = json.load(open(sys.argv[1]))
E = os.environ
near = lambda a, b: abs(a - b) < 1e-6
assert t["lot"] == {"id": E["X1"], "code": "X-1", "product": "coffee-parchment", "kg": 400}, t["lot"]
assert t["direction"] == "up"
assert list(t)[:6] == ["lot", "direction", "lots", "events", "producers", "plots"], list(t)
lots = {l["code"]: l for l in t["lots"]}
assert set(lots) == {"X-1", "M-1", "R-1", "R-2", "R-3"}, lots.keys()
for code, kg_in, share, depth in [("X-1", 400, 1, 0), ("M-1", 2000, 1, 1),
        ("R-1", 1000, .5, 2), ("R-2", 600, .3, 2), ("R-3", 400, .2, 2)]:
    l = lots[code]
    assert near(l["kg_in"], kg_in) and near(l["share"], share) and l["depth"] == depth, l
    assert re.fullmatch("[0-9a-f]{64}", l["author"]), l
    assert re.match(r"\d{4}-\d\d-\d\dT", l["created"]), l
assert [l["code"] for l in t["lots"]] == ["X-1", "M-1", "R-1", "R-2", "R-3"]
evs = {e["id"]: e for e in t["events"]}
assert set(evs) == {E["E1"], E["E2"], E["E3"], E["EM"], E["ET"]}, evs.keys()
assert evs[E["EM"]]["type"] == "merge" and len(evs[E["EM"]]["inputs"]) == 3
assert all(re.fullmatch("[0-9a-f]{64}", e["author"]) and e["created"] for e in t["events"])
p = t["producers"]
assert [x["id"] for x in p] == [E["ROSA"], E["JUAN"]], p
assert near(p[0]["kg"], 1400) and near(p[0]["share"], .7), p[0]
assert near(p[1]["kg"], 600) and near(p[1]["share"], .3), p[1]
assert p[0]["name"] == "Rosa Quispe" and p[0]["dni"] == "41234567", p[0]
assert p[1]["author"] == lots["X-1"]["author"] and p[1]["created"], p[1]
pl = {x["id"]: x for x in t["plots"]}
assert set(pl) == {E["A1"], E["A2"], E["B1"]}, pl
assert near(pl[E["A1"]]["kg"], 900) and near(pl[E["A1"]]["share"], .45)
assert near(pl[E["A2"]]["kg"], 500) and near(pl[E["B1"]]["kg"], 600)
assert pl[E["A1"]]["producer"] == E["ROSA"] and pl[E["B1"]]["producer"] == E["JUAN"]
assert pl[E["A1"]]["area_ha"] == 1.0 and pl[E["A2"]]["area_ha"] == 0.5
assert 0.95 < pl[E["B1"]]["area_ha"] < 1.05, pl[E["B1"]]  # measured
assert all(x["author"] and x["created"] for x in t["plots"])
EOF
	# By id: the same answer.
	q -d "$NODE" trace "$X1" --format json >byid.json
	cmp -s up.json byid.json || fail "trace by id differs from trace by code"

	# Text: a tree from X-1 back to the received lots, then the summary.
	qrun -d "$NODE" trace X-1
	assert_rc 0
	[ ! -s err ] || fail "stderr: $(cat err)"
	assert_out_has "upstream of lot X-1 (coffee-parchment, 400 kg)"
	assert_out_has "X-1 coffee-parchment: 400 of 400 kg, 100.00%"
	assert_out_has "  transform <- M-1 coffee-cherry: 2000 of 2000 kg, 100.00%"
	assert_out_has "    merge <- R-1 coffee-cherry: 1000 of 1000 kg, 50.00%, producer Rosa Quispe"
	assert_out_has "5 lots, 5 events, 2 producers, 3 plots"
	assert_out_has "producer Rosa Quispe (DNI 41234567): 1400 kg, 70.00%"
	assert_out_has "plot $A1 (Rosa Quispe): 900 kg, 45.00%, 1.0000 ha"

	# CSV: one row per (received lot, plot).
	q -d "$NODE" trace X-1 --format csv >up.csv
	python3 - up.csv <<'EOF' || fail "trace X-1 --format csv"
import csv, os, sys
E = os.environ
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
assert list(rows[0])[:6] == ["lot", "code", "product", "lot_kg", "kg_in", "share"], list(rows[0])
got = sorted((r["code"], r["plot"], float(r["plot_kg"]), r["producer_name"]) for r in rows)
want = sorted([("R-1", E["A1"], 500, "Rosa Quispe"), ("R-1", E["A2"], 500, "Rosa Quispe"),
               ("R-2", E["B1"], 600, "Juan Mamani"), ("R-3", E["A1"], 400, "Rosa Quispe")])
assert got == want, got
r2 = [r for r in rows if r["code"] == "R-2"][0]
assert float(r2["share"]) == 0.3 and float(r2["kg_in"]) == 600 and r2["dni"] == "42345678", r2
# Area: declared (A1), else measured (B1).
assert float(rows[0]["area_ha"]) == 1.0 and 0.95 < float(r2["area_ha"]) < 1.05, rows
EOF

	# GeoJSON: the three plots, coordinates with 6 decimals.
	q -d "$NODE" trace X-1 --format geojson >up.geojson
	grep -qF -- '-74.600000,-11.250000' up.geojson || fail "A1 coordinates in trace geojson"
	grep -qF -- '[-74.100000,-11.200000]' up.geojson || fail "A2 coordinates in trace geojson"
	python3 - up.geojson <<'EOF' || fail "trace X-1 --format geojson"
import json, os, sys
E = os.environ
fc = json.load(open(sys.argv[1]))
assert fc["type"] == "FeatureCollection"
pr = {f["properties"]["id"]: f["properties"] for f in fc["features"]}
assert set(pr) == {E["A1"], E["A2"], E["B1"]}, pr
assert pr[E["B1"]] == {"id": E["B1"], "producer": E["JUAN"], "producer_name": "Juan Mamani",
                       "kg": 600, "share": 0.3}, pr[E["B1"]]
EOF
	qpd_stop "$NODE"
	assert_eq "$QPD_STATUS" 0 "quipud exit status"
}

qp_case trace_down
case_trace_down() {
	tr_setup
	q -d "$NODE" trace R-1 --down --format json >down.json
	python3 - down.json <<'EOF' || fail "trace R-1 --down --format json"
import json, os, sys
E = os.environ
t = json.load(open(sys.argv[1]))
near = lambda a, b: abs(a - b) < 1e-6
assert t["direction"] == "down" and t["lot"]["code"] == "R-1", t
assert list(t) == ["lot", "direction", "lots", "events", "shipments", "claims"], list(t)
lots = {l["code"]: l for l in t["lots"]}
assert set(lots) == {"R-1", "M-1", "X-1"}, lots
assert near(lots["M-1"]["share"], .5) and near(lots["X-1"]["share"], .5), lots
assert lots["X-1"]["depth"] == 2 and lots["X-1"]["author"] and lots["X-1"]["created"]
assert {e["id"] for e in t["events"]} == {E["EM"], E["ET"], E["ES"], E["EC"]}, t["events"]
s, = t["shipments"]
assert s["event"] == E["ES"] and s["lot"] == E["X1"] and s["code"] == "X-1", s
assert s["buyer"] == E["BUYER"] and s["destination"] == "Hamburg", s
assert s["container"] == "MSKU1234565" and s["document"] == "BL-2024-77", s
assert near(s["kg"], 200) and near(s["share"], .5) and s["created"], s
c, = t["claims"]
assert c["event"] == E["EC"] and c["reason"] == "mould in two bags" and c["created"], c
EOF
	# From a producer: Rosa's R-1 and R-3 make 70% of the shipment.
	q -d "$NODE" trace "$ROSA" --down --format json >rosa.json
	python3 - rosa.json <<'EOF' || fail "trace ROSA --down"
import json, os, sys
E = os.environ
t = json.load(open(sys.argv[1]))
assert t["lot"] is None and t["producer"]["name"] == "Rosa Quispe", t
assert {l["code"] for l in t["lots"]} == {"R-1", "R-3", "M-1", "X-1"}, t["lots"]
s, = t["shipments"]
assert abs(s["kg"] - 280) < 1e-6 and abs(s["share"] - .7) < 1e-9, s
assert [c["event"] for c in t["claims"]] == [E["EC"]]
EOF
	# Juan: 30% of X-1 (120 kg), and all of M-2 (not shipped).
	q -d "$NODE" trace "$JUAN" --down --format json >juan.json
	python3 - juan.json <<'EOF' || fail "trace JUAN --down"
import json, sys
t = json.load(open(sys.argv[1]))
lots = {l["code"]: l["share"] for l in t["lots"]}
assert lots == {"R-2": 1, "R-6": 1, "R-7": 1, "M-1": .3, "M-2": 1, "X-1": .3}, lots
assert abs(t["shipments"][0]["kg"] - 120) < 1e-6, t["shipments"]
EOF
	# Text and CSV.
	qrun -d "$NODE" trace R-1 --down
	assert_rc 0
	assert_out_has "downstream of lot R-1 (coffee-cherry, 1000 kg)"
	assert_out_has "  merge -> M-1 coffee-cherry: 2000 kg, 50.00%"
	assert_out_has "    transform -> X-1 coffee-parchment: 400 kg, 50.00%"
	assert_out_has "shipment $ES: lot X-1 to Hamburg, buyer Kaffee Import GmbH, container MSKU1234565, document BL-2024-77: 200 kg, 50.00%"
	assert_out_has "claim $EC: lot X-1: mould in two bags"
	q -d "$NODE" trace R-1 --down --format csv >down.csv
	python3 - down.csv <<'EOF' || fail "trace R-1 --down --format csv"
import csv, os, sys
E = os.environ
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
kinds = [r["type"] for r in rows]
assert kinds == ["lot", "lot", "lot", "shipment", "claim"], kinds
s = rows[3]
assert s["event"] == E["ES"] and float(s["kg"]) == 200 and s["buyer_name"] == "Kaffee Import GmbH", s
assert rows[4]["reason"] == "mould in two bags", rows[4]
EOF
	qpd_stop "$NODE"
}

qp_case trace_errors
case_trace_errors() {
	tr_setup
	qrun -d "$NODE" trace NOPE-9
	assert_rc 1
	assert_err_one_line
	assert_err_has "quipu: trace: no lot or producer NOPE-9"
	qrun -d "$NODE" trace NOPE-9 --down
	assert_rc 1
	assert_err_has "quipu: trace: no lot or producer NOPE-9"
	# A producer goes downstream only.
	qrun -d "$NODE" trace "$ROSA"
	assert_rc 1
	assert_err_one_line
	assert_err_has "is a producer; trace a producer with --down"
	qrun -d "$NODE" trace X-1 --down --format geojson
	assert_rc 2
	assert_err_one_line
	qrun -d "$NODE" trace X-1 --format xml
	assert_rc 2
	assert_err_has 'unknown format "xml"'
	qrun -d "$NODE" trace
	assert_rc 2
	assert_err_has "missing LOT"
	qrun -d "$NODE" dds NOPE-9
	assert_rc 1
	assert_err_one_line
	assert_err_has "quipu: dds: no lot NOPE-9"
	qrun -d "$NODE" dds X-1 --country PER
	assert_rc 2
	assert_err_one_line
	qrun -d "$NODE" dds X-1 --max-bytes -5
	assert_rc 2
	assert_err_one_line
	qpd_stop "$NODE"
	# No daemon: exit 3.
	qrun -d "$NODE" trace X-1
	assert_rc 3
	assert_err_one_line
}

qp_case dds_write
case_dds_write() {
	tr_setup
	qrun -d "$NODE" dds X-1
	assert_rc 0
	[ ! -s err ] || fail "stderr: $(cat err)"
	[ -f dds-X-1.geojson ] || fail "dds-X-1.geojson not written"
	assert_out_has "wrote dds-X-1.geojson: 3 plots, $(wc -c <dds-X-1.geojson) bytes"
	# Every coordinate with at least 6 decimals, short inputs included.
	grep -qF -- '[-74.600000,-11.250000]' dds-X-1.geojson || fail "A1 coordinates"
	grep -qF -- '[-74.100000,-11.200000]' dds-X-1.geojson || fail "A2 coordinates"
	python3 - dds-X-1.geojson <<'EOF' || fail "dds-X-1.geojson"
import json, re, sys
text = open(sys.argv[1]).read()
fc = json.loads(text)
assert fc["type"] == "FeatureCollection"
assert len(fc["features"]) == 3, "A1 is named by two lots but appears once"
nums = re.findall(r"-?\d+(?:\.\d+)?(?=[,\]])", re.sub(r'"properties":\{[^}]*\}', "", text))
assert nums and all(re.fullmatch(r"-?\d+\.\d{6,}", n) for n in nums), nums
by = {}
for f in fc["features"]:
    g = f["geometry"]
    by[g["type"] + str(g["coordinates"][0][0] if g["type"] == "Polygon" else g["coordinates"])] = f["properties"]
a1 = by["Polygon[-74.6, -11.25]"]
a2 = by["Point[-74.1, -11.2]"]
b1 = by["Polygon[-74.58, -11.23]"]
assert a1 == {"ProducerName": "Rosa Quispe", "ProducerCountry": "PE",
              "ProductionPlace": "San Martín de Pangoa", "Area": 1.0}, a1
assert list(a1) == ["ProducerName", "ProducerCountry", "ProductionPlace", "Area"]
assert a2["Area"] == 0.5 and a2["ProducerName"] == "Rosa Quispe", a2
# No community: the cooperative's district, province and region.
assert b1["ProductionPlace"] == "Pangoa, Satipo, Junín", b1
assert b1["ProducerName"] == "Juan Mamani", b1
assert 0.95 < b1["Area"] < 1.05 and round(b1["Area"], 4) == b1["Area"], b1
EOF
	# Another file and country.
	q -d "$NODE" dds "$X1" -o out.geojson --country co >/dev/null
	grep -q '"ProducerCountry":"CO"' out.geojson || fail "--country co"
	grep -q '"ProducerCountry":"PE"' out.geojson && fail "PE left in"
	qpd_stop "$NODE"
	assert_eq "$QPD_STATUS" 0 "quipud exit status"
}

qp_case dds_split
case_dds_split() {
	local n max=800
	tr_setup
	qrun -d "$NODE" dds X-1 -o part.geojson --max-bytes $max
	assert_rc 0
	[ ! -e part.geojson ] || fail "part.geojson written though it does not fit"
	n=$(grep -c '^wrote part-[0-9]*.geojson: ' out)
	[ "$n" -ge 2 ] || fail "expected several files: $(cat out)"
	python3 - $max part-*.geojson <<'EOF' || fail "split files"
import json, os, sys
limit, files = int(sys.argv[1]), sys.argv[2:]
seen = []
for p in files:
    assert os.path.getsize(p) < limit, (p, os.path.getsize(p))
    fc = json.load(open(p))
    assert fc["type"] == "FeatureCollection" and fc["features"], p
    seen += [json.dumps(f["geometry"], sort_keys=True) for f in fc["features"]]
assert len(seen) == 3 and len(set(seen)) == 3, seen
EOF
	# Each line names its file, plot count and size.
	while read -r _ name _ _ bytes _; do
		name=${name%:}
		assert_eq "$bytes" "$(wc -c <"$name")" "size of $name"
	done <out
	[ ! -s "$QP_CASE_DIR/err" ] || fail "warned on a first run: $(cat "$QP_CASE_DIR/err")"
	# The same statement in one file: the parts of the split run are
	# named as left over, not removed.
	qrun -d "$NODE" dds X-1 -o part.geojson
	assert_rc 0
	assert_err_has "quipu: warning: part-1.geojson and any later parts are from an earlier run, not part of this statement"
	[ -e part-1.geojson ] || fail "an earlier run's file was removed"
	rm -f part-*.geojson
	qrun -d "$NODE" dds X-1 -o part.geojson --max-bytes $max
	assert_rc 0
	assert_err_has "quipu: warning: part.geojson is from an earlier run, not part of this statement"
	# A limit no feature fits under: refused, nothing written.
	qrun -d "$NODE" dds X-1 -o tiny.geojson --max-bytes 100
	assert_rc 1
	assert_err_one_line
	assert_err_has "not below --max-bytes 100"
	ls tiny* 2>/dev/null && fail "files written for --max-bytes 100"
	qpd_stop "$NODE"
}

qp_case dds_blocking
case_dds_blocking() {
	tr_setup
	# M-2 draws on R-6, received without plots.
	qrun -d "$NODE" dds M-2
	assert_rc 1
	assert_err_one_line
	assert_err_has "quipu: dds M-2: 1 blocking finding (nothing written; --force writes anyway)"
	assert_out_has "lot R-6 (producer Juan Mamani) names no plots"
	ls dds-M-2* 2>/dev/null && fail "a file was written despite the finding"
	# R-6 itself.
	qrun -d "$NODE" dds R-6
	assert_rc 1
	assert_out_has "lot R-6 (producer Juan Mamani) names no plots"
	# --force: listed, then written (B1 only).
	qrun -d "$NODE" dds M-2 --force
	assert_rc 0
	assert_out_has "lot R-6 (producer Juan Mamani) names no plots"
	assert_out_has "wrote dds-M-2.geojson: 1 plots, "
	python3 - dds-M-2.geojson <<'EOF' || fail "forced dds"
import json, sys
fc = json.load(open(sys.argv[1]))
assert [f["properties"]["ProducerName"] for f in fc["features"]] == ["Juan Mamani"], fc
EOF
	# A point plot needs a declared area for TRACES.
	local PT
	PT=$(add plot '{"org":"'"$ORG"'","producer":"'"$JUAN"'","crop":"coffee","geometry":{"type":"Point","coordinates":[-74.3,-11.3]}}')
	add lot '{"org":"'"$ORG"'","code":"R-9","product":"coffee-cherry","kg":80,"producer":"'"$JUAN"'","plots":["'"$PT"'"]}' >/dev/null
	qrun -d "$NODE" dds R-9
	assert_rc 1
	assert_out_has "plot $PT (producer Juan Mamani) is a point without a declared area_ha (TRACES needs the Area of a point)"
	# Forced, the point is written without an Area, never as 0 ha.
	qrun -d "$NODE" dds R-9 --force
	assert_rc 0
	python3 - dds-R-9.geojson <<'EOF' || fail "forced point dds"
import json, sys
fc = json.load(open(sys.argv[1]))
(f,) = fc["features"]
assert f["geometry"]["type"] == "Point", f
assert "Area" not in f["properties"], f
assert f["properties"]["ProducerName"] == "Juan Mamani", f
EOF
	# A polygon with a hole is valid, written, and warned about.
	local PH
	PH=$(add plot '{"org":"'"$ORG"'","producer":"'"$JUAN"'","crop":"coffee","geometry":{"type":"Polygon","coordinates":[[[-74.3,-11.3],[-74.299,-11.3],[-74.299,-11.299],[-74.3,-11.299],[-74.3,-11.3]],[[-74.2996,-11.2996],[-74.2996,-11.2994],[-74.2994,-11.2994],[-74.2994,-11.2996],[-74.2996,-11.2996]]]}}')
	add lot '{"org":"'"$ORG"'","code":"R-10","product":"coffee-cherry","kg":50,"producer":"'"$JUAN"'","plots":["'"$PH"'"]}' >/dev/null
	qrun -d "$NODE" dds R-10
	assert_rc 0
	assert_err_has "quipu: warning: plot $PH has inner rings (holes); TRACES may refuse them"
	assert_out_has "wrote dds-R-10.geojson: 1 plots, "
	qpd_stop "$NODE"
}

qp_case dds_overlap
case_dds_overlap() {
	local C1
	tr_setup
	# Juan's new plot covers about half of Rosa's A1, upstream of X-1.
	C1=$(add plot '{"org":"'"$ORG"'","producer":"'"$JUAN"'","crop":"coffee","geometry":{"type":"Polygon","coordinates":[[[-74.5995,-11.25],[-74.5985,-11.25],[-74.5985,-11.2491],[-74.5995,-11.2491],[-74.5995,-11.25]]]}}')
	qrun -d "$NODE" dds X-1
	assert_rc 1
	assert_err_one_line
	assert_err_has "quipu: dds X-1: 1 blocking finding (nothing written"
	assert_out_has "overlap: plot $A1 (producer Rosa Quispe) and plot $C1 (producer Juan Mamani): 0.45"
	ls dds-X-1* 2>/dev/null && fail "a file was written despite the overlap"
	# C1 itself is not upstream: only the three plots are written.
	qrun -d "$NODE" dds X-1 --force
	assert_rc 0
	assert_out_has "wrote dds-X-1.geojson: 3 plots, "
	qpd_stop "$NODE"
}

qp_case dds_forest_loss
case_dds_forest_loss() {
	tr_setup
	# A forest-loss polygon over B1 (Juan's, upstream of X-1 through R-2).
	cat >loss.geojson <<'GEO'
{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[-74.5803,-11.2303],[-74.5788,-11.2303],[-74.5788,-11.2288],[-74.5803,-11.2288],[-74.5803,-11.2303]]]}}]}
GEO
	q -d "$NODE" layer load loss2021 loss.geojson >/dev/null
	qrun -d "$NODE" dds X-1
	assert_rc 1
	assert_err_one_line
	assert_err_has "quipu: dds X-1: 1 blocking finding"
	assert_out_has "forest_loss: plot $B1 (producer Juan Mamani): layer loss2021 feature 0: 0.99"
	ls dds-X-1* 2>/dev/null && fail "a file was written despite the forest loss"
	# Not upstream of R-1: writes.
	qrun -d "$NODE" dds R-1
	assert_rc 0
	assert_out_has "wrote dds-R-1.geojson: 2 plots, "
	qpd_stop "$NODE"
}
