#!/usr/bin/env python3
"""progcheck.py - check what quipu says about a synthetic programme
(tests/gen/programme.py) against what the generator knows to be true.

Standard library only.  Subcommands:

  counts STATUS_JSON EXPECT_JSON
        exit 0 when `quipu status --json` (file) holds exactly the record
        counts per kind of EXPECT_JSON (an object kind -> n); prints the
        difference otherwise (exit 1)
  expect GENDIR WHO PHASE
        print the expected counts (JSON) of WHO (hub, or a node index 0..2)
        after PHASE
  orgs GENDIR NODE
        print the org ids node NODE (0..2) is enrolled for, one per line
  refusal GENDIR NODE
        print a lot_event JSON line that takes 40% more of the first lot
        over-consumed on node NODE (its own device must refuse it)
  hub QUIPU HUBDIR GENDIR WORKDIR [NODEDIR...]
        run every check at the hub: trace (up, by code and by id, and down
        from producers), dds, report attendance (by org and by service),
        check plots, check lots, check duplicates, and that each field
        node (NODEDIR i is node i) holds exactly the hub's records of its
        orgs.  Prints one line per mismatch ("MISMATCH area: ...") and a
        summary; exit 1 when anything differs.
"""
import glob
import json
import os
import re
import subprocess
import sys
import time

KINDS = ["org", "producer", "plot", "service", "session", "attendance",
         "commitment", "lot", "lot_event", "verification"]


def die(msg):
    print("progcheck: " + msg, file=sys.stderr)
    sys.exit(1)


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def cmd_counts(args):
    st = load(args[0])
    want = load(args[1])
    got = st.get("store", {}).get("records", {})
    bad = ["%s %d (want %d)" % (k, got.get(k, 0), want.get(k, 0))
           for k in KINDS if got.get(k, 0) != want.get(k, 0)]
    if bad:
        print("; ".join(bad))
        sys.exit(1)


def cmd_expect(args):
    nodes = load(os.path.join(args[0], "nodes.json"))
    if args[1] == "hub":
        print(json.dumps(nodes["hub"]["counts"]))
    else:
        print(json.dumps(nodes["nodes"][int(args[1])]["expect"][args[2]]))


def cmd_orgs(args):
    nodes = load(os.path.join(args[0], "nodes.json"))
    for o in nodes["nodes"][int(args[1])]["orgs"]:
        print(o)


def cmd_refusal(args):
    truth = load(os.path.join(args[0], "truth.json"))
    node = int(args[1])
    for oc in truth["overconsumed"]:
        if oc["nodes"][0] != node:
            continue
        # The node's own phase-3 merge output, as the "output".
        with open(os.path.join(args[0], "node%d-3.jsonl" % (node + 1)),
                  encoding="utf-8") as f:
            evs = [json.loads(l) for l in f if '"lot_event"' in l]
        ev = next(e for e in evs if e["id"] in oc["events"])
        kg = round(oc["kg"] * 0.4, 1)
        print(json.dumps({"kind": "lot_event", "org": oc["org"],
                          "lot": ev["lot"], "type": "merge",
                          "inputs": [{"lot": oc["lot"], "kg": kg}],
                          "outputs": [{"lot": ev["lot"], "kg": kg}]}))
        print(oc["code"], file=sys.stderr)
        return
    die("no over-consumed lot on node %d" % node)


# ---------------------------------------------------------------------------
# The hub checks

class Hub:
    def __init__(self, quipu, hub, gen, work):
        self.quipu, self.hub, self.gen, self.work = quipu, hub, gen, work
        self.truth = load(os.path.join(gen, "truth.json"))
        self.nodes = load(os.path.join(gen, "nodes.json"))
        self.bad = {}
        self.nchecks = 0
        self.times = {}
        self.recs = {}

    def run(self, *args, timeout=120):
        t0 = time.time()
        p = subprocess.run([self.quipu, "-d", self.hub] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
        what = " ".join(args[:2])
        self.times[args[0]] = self.times.get(args[0], 0) + time.time() - t0
        return (p.returncode, p.stdout.decode("utf-8", "replace"),
                p.stderr.decode("utf-8", "replace"), what)

    def check(self, area, ok, msg):
        self.nchecks += 1
        if not ok:
            self.bad.setdefault(area, []).append(msg)
        return ok

    def json_of(self, area, res):
        rc, out, err, what = res
        if not self.check(area, rc == 0, "quipu %s exited %d: %s" %
                          (what, rc, err.strip()[:300])):
            return None
        try:
            return json.loads(out)
        except ValueError as e:
            self.check(area, False, "quipu %s: not JSON (%s): %r" %
                       (what, e, out[:200]))
            return None

    def records(self, kind, d=None):
        key = (kind, d)
        if key not in self.recs:
            p = subprocess.run([self.quipu, "-d", d or self.hub, "list",
                                kind], stdout=subprocess.PIPE, timeout=120,
                               check=True)
            self.recs[key] = [json.loads(l) for l in
                              p.stdout.decode().splitlines() if l.strip()]
        return self.recs[key]

    # -- scope and counts ----------------------------------------------------

    def scope(self, nodedirs):
        for i, d in enumerate(nodedirs):
            orgs = set(self.nodes["nodes"][i]["orgs"])
            for kind in KINDS:
                hub = {r["id"] for r in self.records(kind)
                       if r["org"] in orgs}
                got = {r["id"] for r in self.records(kind, d)}
                self.check("scope", hub == got,
                           "node %d %s: %d records, the hub holds %d of its "
                           "orgs (%d missing, %d extra)" % (
                               i, kind, len(got), len(hub), len(hub - got),
                               len(got - hub)))

    # -- trace --------------------------------------------------------------

    def trace_events(self, sh):
        """Events that made the upstream lots, and the leaves' receives."""
        lots = set(sh["lots"])
        leaves = set(sh["leaves"])
        out = set()
        for e in self.records("lot_event"):
            if any(o["lot"] in lots for o in e.get("outputs", [])):
                out.add(e["id"])
            if e["type"] == "receive" and e["lot"] in leaves:
                out.add(e["id"])
        return out

    def trace_up(self, sh, key):
        area = "trace"
        tr = self.json_of(area, self.run("trace", key, "--format", "json"))
        if tr is None:
            return
        code = sh["code"]
        lot = tr.get("lot") or {}
        self.check(area, lot.get("id") == sh["lot"] and
                   lot.get("code") == code,
                   "%s: lot is %s" % (key, json.dumps(lot)[:200]))
        self.check(area, tr.get("direction") == "up",
                   "%s: direction %r" % (code, tr.get("direction")))
        prods = {p.get("id"): p for p in tr.get("producers") or []}
        want = sh["producers"]
        if self.check(area, set(prods) == set(want),
                      "%s: producers differ: %d missing, %d extra" % (
                          code, len(set(want) - set(prods)),
                          len(set(prods) - set(want)))):
            tot = sum(want.values())
            for pid, kg in want.items():
                p = prods[pid]
                self.check(area, abs((p.get("kg") or 0) - kg) <= 0.01,
                           "%s: producer %s kg %s, want %.6f" % (
                               code, pid, p.get("kg"), kg))
                self.check(area, abs((p.get("share") or 0) - kg / tot)
                           <= 1e-4, "%s: producer %s share %s, want %.6f" %
                           (code, pid, p.get("share"), kg / tot))
                reg = self.producer(pid)
                self.check(area, p.get("name") == reg["name"] and
                           p.get("dni") == reg["dni"],
                           "%s: producer %s name/dni %r/%r, want %r/%r" % (
                               code, pid, p.get("name"), p.get("dni"),
                               reg["name"], reg["dni"]))
                self.check(area, bool(p.get("author")) and
                           bool(p.get("created")),
                           "%s: producer %s without author/created" %
                           (code, pid))
        plots = {p.get("id"): p for p in tr.get("plots") or []}
        want = sh["plots"]
        if self.check(area, set(plots) == set(want),
                      "%s: plots differ: %d missing, %d extra" % (
                          code, len(set(want) - set(plots)),
                          len(set(plots) - set(want)))):
            for pid, kg in want.items():
                self.check(area, abs((plots[pid].get("kg") or 0) - kg)
                           <= 0.01, "%s: plot %s kg %s, want %.6f" % (
                               code, pid, plots[pid].get("kg"), kg))
        lots = {x.get("id"): x for x in tr.get("lots") or []}
        want = sh["lots"]
        if self.check(area, set(lots) == set(want),
                      "%s: lots differ: %d missing, %d extra" % (
                          code, len(set(want) - set(lots)),
                          len(set(lots) - set(want)))):
            for lid, kg in want.items():
                self.check(area, abs((lots[lid].get("kg_in") or 0) - kg)
                           <= 0.01, "%s: lot %s kg_in %s, want %.6f" % (
                               code, lid, lots[lid].get("kg_in"), kg))
        evs = {e.get("id") for e in tr.get("events") or []}
        want = self.trace_events(sh)
        self.check(area, evs == want,
                   "%s: events differ: %d missing, %d extra" % (
                       code, len(want - evs), len(evs - want)))

    def producer(self, pid):
        if not hasattr(self, "_producers"):
            self._producers = {r["id"]: r for r in self.records("producer")}
        return self._producers[pid]

    def trace_down(self, dn):
        area = "trace --down"
        tr = self.json_of(area, self.run("trace", dn["producer"], "--down",
                                         "--format", "json"))
        if tr is None:
            return
        pid = dn["producer"]
        self.check(area, tr.get("direction") == "down",
                   "%s: direction %r" % (pid, tr.get("direction")))
        ships = {s.get("event"): s for s in tr.get("shipments") or []}
        want = dn["shipments"]
        if self.check(area, set(ships) == set(want),
                      "producer %s: shipments %s, want %s" % (
                          pid, sorted(ships), sorted(want))):
            for ev, w in want.items():
                self.check(area, abs((ships[ev].get("kg") or 0) - w["kg"])
                           <= 0.01, "producer %s: shipment %s kg %s, want "
                           "%.6f" % (pid, ev, ships[ev].get("kg"), w["kg"]))
        claims = sorted(c.get("event") for c in tr.get("claims") or [])
        self.check(area, claims == dn["claims"],
                   "producer %s: claims %s, want %s" % (pid, claims,
                                                        dn["claims"]))

    def trace_formats(self, sh):
        """geojson (the upstream plots) and csv of one shipment, and an
        unknown lot."""
        area = "trace formats"
        code = sh["code"]
        fc = self.json_of(area, self.run("trace", code, "--format",
                                         "geojson"))
        if fc is not None:
            feats = fc.get("features") or []
            got = {(f.get("properties") or {}).get("id"):
                   (f.get("properties") or {}) for f in feats}
            want = sh["plots"]
            if self.check(area, set(got) == set(want),
                          "%s geojson: %d features for %d plots" % (
                              code, len(got), len(want))):
                for pid, kg in want.items():
                    self.check(area, abs((got[pid].get("kg") or 0) - kg)
                               <= 0.01, "%s geojson: plot %s kg %r, want "
                               "%.6f" % (code, pid, got[pid].get("kg"), kg))
        rc, out, err, what = self.run("trace", code, "--format", "csv")
        if self.check(area, rc == 0, "%s csv: exit %d: %s" % (
                code, rc, err.strip()[:200])):
            missing = [p for p in sh["plots"] if p not in out]
            self.check(area, not missing, "%s csv: %d plots missing" % (
                code, len(missing)))
        rc, out, err, what = self.run("trace", "NO-SUCH-LOT")
        self.check(area, rc == 1 and err.strip() ==
                   "quipu: trace: no lot or producer NO-SUCH-LOT",
                   "unknown lot: exit %d, %r" % (rc, err.strip()))

    def export_plots(self):
        """Every plot's geometry through store, sync and export with its
        6-decimal coordinates."""
        area = "export plot"
        want = {}
        for path in glob.glob(os.path.join(self.gen, "*.jsonl")):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if '"kind":"plot"' in line:
                        r = json.loads(line)
                        want[r["id"]] = self.geom_key(r["geometry"])
        out = os.path.join(self.work, "plots.geojson")
        rc, so, se, what = self.run("export", "plot", "--format", "geojson",
                                    "-o", out)
        if not self.check(area, rc == 0, "exit %d: %s" % (
                rc, se.strip()[:200])):
            return
        with open(out, encoding="utf-8") as f:
            text = f.read()
        fc = json.loads(text)
        got = {}
        for ft in fc.get("features") or []:
            got[(ft.get("properties") or {}).get("id")] = \
                self.geom_key(ft["geometry"])
        self.check(area, set(got) == set(want), "%d plots exported, want %d"
                   % (len(got), len(want)))
        bad = [pid for pid in want if pid in got and got[pid] != want[pid]]
        self.check(area, not bad, "%d geometries differ from what was "
                   "imported, e.g. %s" % (len(bad), bad[:1]))
        short = re.findall(r'"coordinates":\[[^"]*?[\[,]\s*'
                           r'(-?\d+(?:\.\d{0,5})?)\s*[,\]]', text)
        self.check(area, not short, "coordinates with fewer than 6 "
                   "decimals: %s" % short[:3])

    # -- dds ----------------------------------------------------------------

    @staticmethod
    def geom_key(g):
        def walk(c):
            if isinstance(c, list) and c and isinstance(c[0], (int, float)):
                return "%.6f,%.6f" % (c[0], c[1])
            return "[" + ";".join(walk(x) for x in c) + "]"
        return g["type"] + walk(g["coordinates"])

    def dds_files(self, base):
        if os.path.exists(base):
            return [base]
        stem = base[:-len(".geojson")] if base.endswith(".geojson") else base
        return sorted(glob.glob(stem + "-*.geojson"),
                      key=lambda p: int(re.findall(r"-(\d+)\.geojson$",
                                                   p)[0]))

    def dds_compare(self, sh, files, max_bytes=25000000):
        area = "dds"
        code = sh["code"]
        want = sh["dds"]["plots"]
        by_geom = {w["geometry"]: pid for pid, w in want.items()}
        seen = {}
        for path in files:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            self.check(area, len(text.encode()) < max_bytes,
                       "%s: %s is %d bytes, limit %d" % (
                           code, path, len(text.encode()), max_bytes))
            try:
                fc = json.loads(text)
            except ValueError as e:
                self.check(area, False, "%s: %s not JSON: %s" % (code, path,
                                                                 e))
                continue
            self.check(area, fc.get("type") == "FeatureCollection",
                       "%s: type %r" % (code, fc.get("type")))
            # Every coordinate written with at least 6 decimals.
            short = re.findall(r"[\[,]\s*(-?\d+(?:\.\d{0,5})?)\s*(?=[,\]])",
                               re.sub(r'"properties":\{[^}]*\}', "", text))
            self.check(area, not short, "%s: coordinates with fewer than "
                       "6 decimals: %s" % (code, short[:3]))
            for ft in fc.get("features") or []:
                g = ft.get("geometry") or {}
                try:
                    k = self.geom_key(g)
                except (KeyError, TypeError, IndexError):
                    self.check(area, False, "%s: bad geometry %r" % (
                        code, str(g)[:100]))
                    continue
                pid = by_geom.get(k)
                if not self.check(area, pid is not None,
                                  "%s: a feature matches no upstream plot "
                                  "(%s...)" % (code, k[:60])):
                    continue
                self.check(area, pid not in seen, "%s: plot %s twice" %
                           (code, pid))
                seen[pid] = True
                pr = ft.get("properties") or {}
                w = want[pid]
                for prop in ("ProducerName", "ProducerCountry",
                             "ProductionPlace"):
                    self.check(area, pr.get(prop) == w[prop],
                               "%s: plot %s %s %r, want %r" % (
                                   code, pid, prop, pr.get(prop), w[prop]))
                tol = 1e-4 if w["area_declared"] else \
                    max(0.002, 0.005 * w["Area"])
                a = pr.get("Area")
                self.check(area, isinstance(a, (int, float)) and
                           abs(a - w["Area"]) <= tol,
                           "%s: plot %s Area %r, want %r" % (
                               code, pid, a, w["Area"]))
        missing = set(want) - set(seen)
        self.check(area, not missing, "%s: %d of %d upstream plots missing "
                   "from the dds" % (code, len(missing), len(want)))

    def dds(self, sh):
        area = "dds"
        code = sh["code"]
        out = os.path.join(self.work, "dds-%s.geojson" % code)
        rc, so, se, what = self.run("dds", code, "-o", out)
        blocking = sh["dds"]["blocking"]
        if blocking:
            self.check(area, rc == 1, "%s: %d planted findings upstream, "
                       "exit %d (want 1): %s" % (code, len(blocking), rc,
                                                 se.strip()[:200]))
            self.check(area, "blocking finding" in se and
                       se.startswith("quipu: dds"),
                       "%s: stderr %r" % (code, se.strip()[:200]))
            self.check(area, not self.dds_files(out),
                       "%s: blocked, yet a file was written" % code)
            for pair in blocking:
                self.check(area, any(p in so for p in pair),
                           "%s: finding for plots %s not listed on stdout: "
                           "%r" % (code, pair, so[:300]))
            rc, so, se, what = self.run("dds", code, "-o", out, "--force")
        if not self.check(area, rc == 0, "%s: exit %d: %s" % (
                code, rc, se.strip()[:300])):
            return
        m = re.search(r"wrote (.*): (\d+) plots, (\d+) bytes", so)
        self.check(area, m is not None and int(m.group(2)) ==
                   len(sh["dds"]["plots"]),
                   "%s: stdout %r, want %d plots" % (code, so.strip()[:200],
                                                     len(sh["dds"]["plots"])))
        self.dds_compare(sh, self.dds_files(out))

    def dds_split(self, sh):
        """The largest shipment split in files of a third of its size."""
        code = sh["code"]
        whole = os.path.join(self.work, "dds-%s.geojson" % code)
        if not os.path.exists(whole):
            return
        mb = max(2000, os.path.getsize(whole) // 3)
        out = os.path.join(self.work, "split-%s.geojson" % code)
        args = ["dds", code, "-o", out, "--max-bytes", str(mb)]
        if sh["dds"]["blocking"]:
            args.append("--force")
        rc, so, se, what = self.run(*args)
        if not self.check("dds", rc == 0, "%s --max-bytes %d: exit %d: "
                          "%s" % (code, mb, rc, se.strip()[:200])):
            return
        files = self.dds_files(out)
        self.check("dds", len(files) >= 3 and not os.path.exists(out),
                   "%s --max-bytes %d: files %s" % (
                       code, mb, [os.path.basename(f) for f in files]))
        self.dds_compare(sh, files, max_bytes=mb)

    # -- report -------------------------------------------------------------

    def report(self, by):
        area = "report --by %s" % by
        want = self.truth["report_" + by]
        rep = self.json_of(area, self.run("report", "attendance", "--by", by,
                                          "--format", "json"))
        if rep is None:
            return
        self.check(area, rep.get("by") == [by], "by %r" % rep.get("by"))
        self.check(area, rep.get("duplicates_merged") ==
                   want["duplicates_merged"],
                   "duplicates_merged %r, want %d" % (
                       rep.get("duplicates_merged"),
                       want["duplicates_merged"]))
        rows = {r.get(by): r for r in rep.get("rows") or []}
        wrows = {r[by]: r for r in want["rows"]}
        self.check(area, set(rows) == set(wrows),
                   "rows: %d, want %d (%d missing, %d extra)" % (
                       len(rows), len(wrows), len(set(wrows) - set(rows)),
                       len(set(rows) - set(wrows))))

        def cmp(what, got, w):
            for k, v in w.items():
                g = got.get(k)
                if isinstance(v, float) or k in ("hours",
                                                 "attendance_rate",
                                                 "women_share"):
                    tol = 0.01 if k == "hours" else 1e-6
                    ok = isinstance(g, (int, float)) and abs(g - v) <= tol
                else:
                    ok = g == v
                self.check(area, ok, "%s: %s %r, want %r" % (what, k, g, v))
        for k, w in wrows.items():
            if k in rows:
                cmp("%s %s" % (by, w.get("org_name") or
                               w.get("service_title")), rows[k], w)
        cmp("totals", rep.get("totals") or {}, want["totals"])

    def report_csv(self):
        area = "report csv"
        want = self.truth["report_org"]
        rc, out, err, what = self.run("report", "attendance", "--format",
                                      "csv")
        if not self.check(area, rc == 0, "exit %d: %s" % (
                rc, err.strip()[:200])):
            return
        import csv
        import io
        rows = list(csv.reader(io.StringIO(out)))
        self.check(area, rows and rows[0][:2] == ["org", "org_name"],
                   "header %r" % (rows[0] if rows else None))
        self.check(area, len(rows) == len(want["rows"]) + 2 and
                   rows[-1][0] == "TOTAL",
                   "%d lines, want a header, %d rows and TOTAL (last %r)" % (
                       len(rows), len(want["rows"]),
                       rows[-1][:2] if rows else None))
        if rows and "attendances" in rows[0] and rows[-1][0] == "TOTAL":
            i = rows[0].index("attendances")
            self.check(area, rows[-1][i] == str(want["totals"]
                                                ["attendances"]),
                       "TOTAL attendances %r, want %d" % (
                           rows[-1][i], want["totals"]["attendances"]))

    # -- checks -------------------------------------------------------------

    def check_plots(self):
        area = "check plots"
        f = self.json_of(area, self.run("check", "plots", "--json"))
        if f is None:
            return
        found = {}
        for x in f:
            found.setdefault(x.get("type"), {})[
                frozenset(x.get("plots") or [])] = x
        want = {frozenset(o["plots"]): o for o in self.truth["overlaps"]}
        got = found.pop("overlap", {})
        for k, o in want.items():
            g = got.get(k)
            if not self.check(area, g is not None,
                              "planted overlap %s not found" % sorted(k)):
                continue
            self.check(area, abs((g.get("overlap_ha") or 0) -
                                 o["overlap_ha"]) <=
                       0.01 + 0.02 * o["overlap_ha"],
                       "overlap %s: %r ha, want %.4f" % (
                           sorted(k), g.get("overlap_ha"), o["overlap_ha"]))
            self.check(area, abs((g.get("overlap_pct") or 0) -
                                 o["overlap_pct"]) <=
                       0.5 + 0.02 * o["overlap_pct"],
                       "overlap %s: %r%%, want %.2f" % (
                           sorted(k), g.get("overlap_pct"),
                           o["overlap_pct"]))
            self.check(area, sorted(g.get("producers") or []) ==
                       sorted(o["producers"]),
                       "overlap %s: producers %r" % (sorted(k),
                                                     g.get("producers")))
        for k in set(got) - set(want):
            self.check(area, False, "unplanted overlap %s" % sorted(k))
        want = {frozenset(o["plots"]) for o in self.truth["duplicate_plots"]}
        got = set(found.pop("duplicate", {}))
        self.check(area, got == want,
                   "duplicates %s, want %s" % (sorted(map(sorted, got)),
                                               sorted(map(sorted, want))))
        for t, xs in found.items():
            self.check(area, False, "%d unexpected %r findings, e.g. %s" % (
                len(xs), t, json.dumps(next(iter(xs.values())))[:200]))

    def check_lots(self):
        area = "check lots"
        f = self.json_of(area, self.run("check", "lots", "--json"))
        if f is None:
            return
        got = {x.get("lot"): x for x in f if x.get("type") == "overconsumed"}
        want = {o["lot"]: o for o in self.truth["overconsumed"]}
        self.check(area, set(got) == set(want),
                   "over-consumed lots %s, want %s" % (
                       sorted(got), sorted(want)))
        for lid, w in want.items():
            g = got.get(lid)
            if g is None:
                continue
            self.check(area, g.get("code") == w["code"] and
                       abs((g.get("consumed") or 0) - w["consumed"]) <= 0.01
                       and abs((g.get("kg") or 0) - w["kg"]) <= 0.01,
                       "%s: code %r kg %r consumed %r, want %s %.1f %.1f" % (
                           lid, g.get("code"), g.get("kg"),
                           g.get("consumed"), w["code"], w["kg"],
                           w["consumed"]))
            self.check(area, sorted(g.get("events") or []) == w["events"],
                       "%s: events %r, want %r" % (lid, g.get("events"),
                                                   w["events"]))
        other = [x for x in f if x.get("type") != "overconsumed"]
        self.check(area, not other, "%d unexpected findings, e.g. %s" % (
            len(other), json.dumps(other[:1])[:300]))

    def check_duplicates(self):
        area = "check duplicates"
        f = self.json_of(area, self.run("check", "duplicates", "--json"))
        if f is None:
            return
        got = {(x.get("kind"), x.get("value"), x.get("org"),
                tuple(sorted(x.get("ids") or []))) for x in f}
        got = {(k, v, o if k != "attendance" else None, ids)
               for k, v, o, ids in got}
        want = {(x["kind"], x["value"], x["org"], tuple(x["ids"]))
                for x in self.truth["duplicate_producers"]}
        # The same person at one session recorded on two devices.
        want |= {("attendance", x["person"], None,
                  tuple(sorted(x["records"])))
                 for x in self.truth.get("attendance_duplicates", [])}
        self.check(area, got == want, "findings %s, want %s" % (
            sorted(got), sorted(want)))

    def run_all(self, nodedirs):
        t0 = time.time()
        if nodedirs:
            self.scope(nodedirs)
        ships = self.truth["shipments"]
        for i, sh in enumerate(ships):
            # By code, and the first one by id too.
            self.trace_up(sh, sh["code"])
            if i == 0:
                self.trace_up(sh, sh["lot"])
        for dn in self.truth["downstream"]:
            self.trace_down(dn)
        if ships:
            self.trace_formats(ships[0])
        self.export_plots()
        for sh in ships:
            self.dds(sh)
        if ships:
            self.dds_split(max(ships, key=lambda s: len(s["plots"])))
        self.report("org")
        self.report("service")
        self.report_csv()
        self.check_plots()
        self.check_lots()
        self.check_duplicates()
        n = sum(len(v) for v in self.bad.values())
        for area, msgs in sorted(self.bad.items()):
            for m in msgs[:8]:
                print("MISMATCH %s: %s" % (area, m))
            if len(msgs) > 8:
                print("MISMATCH %s: ... and %d more" % (area, len(msgs) - 8))
        print("progcheck: %d checks, %d mismatches (%s); %.1f s (%s)" % (
            self.nchecks, n,
            ", ".join("%s %d" % (a, len(m)) for a, m in
                      sorted(self.bad.items())) or "none",
            time.time() - t0, ", ".join("%s %.1f s" % kv for kv in
                                        sorted(self.times.items()))))
        return 1 if n else 0


def main():
    if len(sys.argv) < 2:
        die("usage: progcheck.py counts|expect|orgs|refusal|hub ...")
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "counts":
        cmd_counts(args)
    elif cmd == "expect":
        cmd_expect(args)
    elif cmd == "orgs":
        cmd_orgs(args)
    elif cmd == "refusal":
        cmd_refusal(args)
    elif cmd == "hub":
        h = Hub(args[0], args[1], args[2], args[3])
        sys.exit(h.run_all(args[4:]))
    else:
        die("unknown subcommand %r" % cmd)


if __name__ == "__main__":
    main()
