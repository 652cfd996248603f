# t_plots.sh - the hub's plot review: `quipu check plots` finds plots of
# different producers that overlap, the same land recorded twice and plots
# inside a forest-loss layer, with areas that match an independent
# computation; `quipu layer load/list/remove` stores layers atomically and
# refuses a bad file naming the feature, changing nothing.

# A square of side D degrees (about 110 m) at (lon, lat) = corner, as a
# plot's geometry; an east-west rectangle when a width is given.
PLOT_D=0.001

# plots_rect X Y [W] [H]: a counter-clockwise rectangle's GeoJSON Polygon.
plots_rect() {
	python3 - "$@" <<'EOF'
import sys
x, y = float(sys.argv[1]), float(sys.argv[2])
w = float(sys.argv[3]) if len(sys.argv) > 3 else 0.001
h = float(sys.argv[4]) if len(sys.argv) > 4 else 0.001
r = [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]
print('{"type":"Polygon","coordinates":[[%s]]}' %
      ",".join("[%.6f,%.6f]" % (a, b) for a, b in r))
EOF
}

# plots_add PRODUCER GEOMETRY [EXTRA]: add a plot; prints its id.
plots_add() {
	add plot '{"org":"'"$ORG"'","producer":"'"$1"'","crop":"coffee","geometry":'"$2"${3:-}'}'
}

# plots_layer FILE FEATURE-GEOMETRY...: a FeatureCollection.
plots_layer() {
	local out=$1 first=1 g
	shift
	{
		printf '{"type":"FeatureCollection","name":"loss","features":['
		for g in "$@"; do
			[ $first -eq 1 ] || printf ','
			first=0
			printf '{"type":"Feature","properties":{"lossyear":21},"geometry":%s}' "$g"
		done
		printf ']}\n'
	} >"$out"
}

# plots_layers_empty: no layer file is stored (not even a temporary one).
plots_layers_empty() {
	if [ -d "$NODE/layers" ]; then
		[ -z "$(ls -A "$NODE/layers")" ] ||
			fail "layers dir not empty: $(ls -A "$NODE/layers")"
	fi
}

qp_case plots_check
case_plots_check() {
	local P1 P2 P3 A B C D E F G H L M N x0=-74.620000 y0=-11.240000 lay

	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	qpd_start "$NODE"
	ORG=$(add org '{"ruc":"'"$(ruc 2060555444)"'","name":"Cooperativa Satipo","type":"cooperative"}')
	P1=$(add producer '{"org":"'"$ORG"'","dni":"41234567","name":"Rosa Quispe","sex":"F"}')
	P2=$(add producer '{"org":"'"$ORG"'","dni":"42345678","name":"Juan Mamani","sex":"M"}')
	P3=$(add producer '{"org":"'"$ORG"'","dni":"43456789","name":"Ana Huamán","sex":"F"}')

	# Nothing yet.
	qrun -d "$NODE" check plots
	assert_rc 0 "check plots on no plots"
	assert_eq "$(cat out)" "no findings" "check plots output"

	# A (P1) and B (P2): B is A moved east by a quarter: 75% overlap.
	A=$(plots_add "$P1" "$(plots_rect -74.620000 -11.240000)")
	B=$(plots_add "$P2" "$(plots_rect -74.619750 -11.240000)")
	# C (P3) overlaps A's northern edge by 3%: under the 5% default.
	C=$(plots_add "$P3" "$(plots_rect -74.620000 -11.239030)")
	# D and E, both P1's, overlap by half: one producer, not reported.
	D=$(plots_add "$P1" "$(plots_rect -74.610000 -11.240000)")
	E=$(plots_add "$P1" "$(plots_rect -74.609500 -11.240000)")
	# F (P2) and G (P3): the same land twice.
	F=$(plots_add "$P2" "$(plots_rect -74.600000 -11.240000)")
	G=$(plots_add "$P3" "$(plots_rect -74.600000 -11.240000)")
	# H (P1) and L (P2): one point, recorded twice.
	H=$(plots_add "$P1" '{"type":"Point","coordinates":[-74.590000,-11.240000]}' ',"area_ha":1.5')
	L=$(plots_add "$P2" '{"type":"Point","coordinates":[-74.590000,-11.240000]}' ',"area_ha":1.5')
	# M (P3) half inside the forest-loss polygon loaded below; N (P3) a
	# point inside it.
	M=$(plots_add "$P3" "$(plots_rect -74.580000 -11.240000)")
	N=$(plots_add "$P3" '{"type":"Point","coordinates":[-74.578000,-11.239500]}' ',"area_ha":0.8')

	# --- layers ---
	lay=$(plots_rect -74.579500 -11.241000 0.003 0.002)
	plots_layer loss.geojson '{"type":"Polygon","coordinates":[[[-70.1,-10.1],[-70,-10.1],[-70,-10],[-70.1,-10.1]]]}' "$lay"
	# Feature 1 self-intersects; feature 2 is a Point.
	plots_layer bow.geojson "$lay" '{"type":"Polygon","coordinates":[[[-74.58,-11.24],[-74.57,-11.23],[-74.57,-11.24],[-74.58,-11.23],[-74.58,-11.24]]]}'
	plots_layer pt.geojson "$lay" "$lay" '{"type":"Point","coordinates":[-74.58,-11.24]}'
	printf '{"type":"FeatureCollection","features":[' >trunc.geojson

	qrun -d "$NODE" layer list
	assert_rc 0 "layer list with none"
	[ ! -s out ] || fail "layer list printed '$(cat out)'"

	qrun -d "$NODE" layer load loss2021 bow.geojson
	assert_rc 1 "load of a self-intersecting layer"
	assert_err_one_line
	assert_err_has "quipu: layer load bow.geojson: feature 1: geometry: ring 0 self-intersects near vertex"
	plots_layers_empty
	qrun -d "$NODE" layer load loss2021 pt.geojson
	assert_rc 1 "load of a layer with a point"
	assert_err_one_line
	assert_err_has "feature 2: geometry.type: Point is not accepted; must be Polygon or MultiPolygon"
	qrun -d "$NODE" layer load loss2021 trunc.geojson
	assert_rc 1 "load of a truncated layer"
	assert_err_one_line
	assert_err_has "quipu: layer load trunc.geojson: not JSON: "
	qrun -d "$NODE" layer load 'bad/name' loss.geojson
	assert_rc 2 "load under a bad name"
	assert_err_one_line
	qrun -d "$NODE" layer load loss2021 missing.geojson
	assert_rc 1 "load of a missing file"
	assert_err_one_line
	plots_layers_empty
	qrun -d "$NODE" layer list
	[ ! -s out ] || fail "layer list printed '$(cat out)' after refusals"

	qrun -d "$NODE" layer load loss2021 loss.geojson
	assert_rc 0 "layer load"
	assert_eq "$(cat out)" "loaded layer loss2021: 2 features" "layer load output"
	cmp loss.geojson "$NODE/layers/loss2021.geojson" || fail "stored layer differs from the file"
	qrun -d "$NODE" layer list
	assert_eq "$(cat out)" "loss2021 2 features $(stat -c %s loss.geojson) bytes" "layer list"
	# A bad file under the same name leaves the stored layer alone.
	qrun -d "$NODE" layer load loss2021 bow.geojson
	assert_rc 1 "replacing with a bad layer"
	cmp loss.geojson "$NODE/layers/loss2021.geojson" || fail "a refused load changed the layer"
	assert_eq "$(ls -A "$NODE/layers")" "loss2021.geojson" "layer files"

	# --- check plots ---
	qrun -d "$NODE" check plots --json
	assert_rc 0 "check plots --json"
	cp out found.json
	qrun -d "$NODE" check plots
	assert_rc 0 "check plots"
	cp out found.txt
	python3 - found.json found.txt "$A" "$B" "$F" "$G" "$H" "$L" "$M" "$N" \
		"$P1" "$P2" "$P3" <<'EOF' || fail "check plots findings"
import json, math, sys
found = json.load(open(sys.argv[1]))
text = open(sys.argv[2]).read().splitlines()
A, B, F, G, H, L, M, N, P1, P2, P3 = sys.argv[3:]
names = {P1: "Rosa Quispe", P2: "Juan Mamani", P3: "Ana Huamán"}

def cell_ha(lon1, lat1, lon2, lat2):
    # WGS84 area between two parallels and two meridians (authalic
    # latitude, closed form): independent of PROJ and GEOS.
    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f); e = math.sqrt(e2); b = a * (1 - f)
    F_ = lambda s: s / (1 - e2 * s * s) + math.log((1 + e * s) / (1 - e * s)) / (2 * e)
    s1, s2 = math.sin(math.radians(lat1)), math.sin(math.radians(lat2))
    return abs(math.radians(lon2 - lon1)) * b * b / 2 * abs(F_(s2) - F_(s1)) / 1e4

D = 0.001
ab = cell_ha(-74.61975, -11.24, -74.62 + D, -11.24 + D)
fg = cell_ha(-74.6, -11.24, -74.6 + D, -11.24 + D)
m = cell_ha(-74.5795, -11.24, -74.58 + D, -11.24 + D)
want = {
    ("overlap", tuple(sorted([A, B]))): (ab, 75.0),
    ("duplicate", tuple(sorted([F, G]))): (fg, 100.0),
    ("duplicate", tuple(sorted([H, L]))): (0.0, 100.0),
    ("forest_loss", (M,)): (m, 50.0),
    ("forest_loss", (N,)): (0.0, 100.0),
}
got = {}
for f in found:
    key = (f["type"], tuple(f["plots"]))
    assert key not in got, ("twice", key)
    got[key] = f
assert set(got) == set(want), (sorted(got), sorted(want))
# Sorted by type, then plot ids.
keys = [(f["type"], f["plots"]) for f in found]
assert keys == sorted(keys), keys
for key, (ha, pct) in want.items():
    f = got[key]
    assert abs(f["overlap_ha"] - ha) <= 1e-4 * ha + 1e-9, (key, f["overlap_ha"], ha)
    assert abs(f["overlap_pct"] - pct) <= 1e-3, (key, f["overlap_pct"], pct)
    assert len(f["producers"]) == len(f["plots"]), f
    if f["type"] == "forest_loss":
        assert f["layer"] == "loss2021" and f["feature"] == 1, f
    else:
        assert "layer" not in f and "feature" not in f, f
prod = {A: P1, B: P2, F: P2, G: P3, H: P1, L: P2, M: P3, N: P3}
for f in found:
    assert f["producers"] == [prod[p] for p in f["plots"]], f

# The text: one line per finding, in the same order.
def ha_text(v):
    dec = 2
    if 0 < v < 1:
        dec = min(8, 2 - math.floor(math.log10(v)))
    return "%.*f" % (dec, v)
def plot(f, i):
    return "plot %s (producer %s)" % (f["plots"][i], names[f["producers"][i]])
lines = []
for f in found:
    if f["type"] == "forest_loss":
        head = "forest_loss: %s: layer %s feature %d: " % (plot(f, 0), f["layer"], f["feature"])
        if f["plots"] == [N]:
            lines.append(head + "the point lies inside")
        else:
            lines.append(head + "%s ha, %.1f%% of the plot" % (ha_text(f["overlap_ha"]), f["overlap_pct"]))
    else:
        head = "%s: %s and %s: " % (f["type"], plot(f, 0), plot(f, 1))
        if sorted(f["plots"]) == sorted([H, L]):
            lines.append(head + "the same point")
        else:
            lines.append(head + "%s ha, %.1f%% of the smaller" % (ha_text(f["overlap_ha"]), f["overlap_pct"]))
assert text == lines, "\n".join(["text:"] + text + ["want:"] + lines)
EOF
	# The example line, spelt out once.
	grep -qF "overlap: plot " found.txt || fail "no overlap line"
	grep -qE '^overlap: plot [0-9a-f-]+ \(producer (Rosa Quispe|Juan Mamani)\) and plot [0-9a-f-]+ \(producer (Rosa Quispe|Juan Mamani)\): 0\.[0-9]{3} ha, 75\.0% of the smaller$' found.txt ||
		fail "overlap line: $(grep overlap found.txt)"

	# A higher threshold drops the 75% overlap; a lower one finds A-C (3%)
	# but not B-C (2.25%).
	qrun -d "$NODE" check plots --json --min-overlap 80
	assert_rc 0 "check plots --min-overlap 80"
	python3 -c 'import json,sys; f=json.load(open(sys.argv[1])); assert [x["type"] for x in f].count("overlap")==0, f' out ||
		fail "--min-overlap 80 still reports the overlap"
	qrun -d "$NODE" check plots --json --min-overlap 2.5
	python3 - out "$A" "$C" <<'EOF' || fail "--min-overlap 2.5"
import json, sys
f = json.load(open(sys.argv[1]))
ov = [x for x in f if x["type"] == "overlap"]
assert len(ov) == 2, ov
ac = [x for x in ov if sorted(x["plots"]) == sorted(sys.argv[2:4])]
assert len(ac) == 1 and abs(ac[0]["overlap_pct"] - 3.0) < 1e-3, ov
EOF
	qrun -d "$NODE" check plots --min-overlap abc
	assert_rc 2 "--min-overlap abc"
	assert_err_one_line
	qrun -d "$NODE" check plots --min-overlap 101
	assert_rc 2 "--min-overlap 101"

	# --layer: the named layer only; an unknown one is an error.
	qrun -d "$NODE" check plots --layer loss2021 --json
	assert_rc 0 "check plots --layer loss2021"
	cmp out found.json || fail "--layer loss2021 differs from every layer"
	qrun -d "$NODE" check plots --layer nosuch
	assert_rc 1 "check plots --layer nosuch"
	assert_err_one_line
	assert_err_has "quipu: no layer nosuch"

	# A second layer is found as well; removing it and the first leaves
	# no forest-loss finding.
	plots_layer other.geojson "$(plots_rect -74.620000 -11.240000 0.0001 0.0001)"
	q -d "$NODE" layer load other other.geojson >/dev/null
	qrun -d "$NODE" layer list
	assert_eq "$(head -n 1 out)" "loss2021 2 features $(stat -c %s loss.geojson) bytes" "layer list, first"
	assert_eq "$(sed -n 2p out)" "other 1 features $(stat -c %s other.geojson) bytes" "layer list, second"
	qrun -d "$NODE" check plots --json
	python3 -c 'import json,sys; f=json.load(open(sys.argv[1])); assert sum(1 for x in f if x.get("layer")=="other" and x["plots"]==[sys.argv[2]])==1, f' out "$A" ||
		fail "finding against the second layer"
	qrun -d "$NODE" layer remove other
	assert_rc 0 "layer remove other"
	assert_eq "$(cat out)" "removed layer other" "layer remove output"
	qrun -d "$NODE" layer remove loss2021
	assert_rc 0 "layer remove loss2021"
	qrun -d "$NODE" layer remove loss2021
	assert_rc 1 "removing a removed layer"
	assert_err_one_line
	assert_err_has "quipu: no layer loss2021"
	plots_layers_empty
	qrun -d "$NODE" check plots --json
	python3 -c 'import json,sys; f=json.load(open(sys.argv[1])); assert [x["type"] for x in f]==["duplicate","duplicate","overlap"], f' out ||
		fail "findings after the layers were removed: $(cat out)"

	# Usage.
	qrun -d "$NODE" layer
	assert_rc 2 "layer without a subcommand"
	qrun -d "$NODE" layer frobnicate
	assert_rc 2 "layer frobnicate"
	qrun -d "$NODE" layer load onlyname
	assert_rc 2 "layer load without a file"
	qrun -d "$NODE" layer --help
	assert_rc 0 "layer --help"
	assert_out_has "quipu [-d DIR] layer load NAME FILE"
	qrun -d "$NODE" check plots extra
	assert_rc 2 "check plots extra"

	qpd_stop "$NODE"
	assert_eq "$QPD_STATUS" 0 "quipud exit status"
}

# Layers are files of the node: they need no daemon.
qp_case plots_layer_offline
case_plots_layer_offline() {
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	plots_layer l.geojson "$(plots_rect -74.62 -11.24)"
	qrun -d "$NODE" layer load a-1_B l.geojson
	assert_rc 0 "layer load without quipud"
	assert_eq "$(cat out)" "loaded layer a-1_B: 1 feature" "output"
	assert_eq "$(stat -c %a "$NODE/layers")" 700 "layers dir mode"
	# Replacing a layer.
	plots_layer l2.geojson "$(plots_rect -74.62 -11.24)" "$(plots_rect -74.60 -11.24)"
	q -d "$NODE" layer load a-1_B l2.geojson >/dev/null
	cmp l2.geojson "$NODE/layers/a-1_B.geojson" || fail "layer not replaced"
	qrun -d "$NODE" layer list
	assert_eq "$(cat out)" "a-1_B 2 features $(stat -c %s l2.geojson) bytes" "list"
	# A name of 65 characters is refused; 64 is fine.
	qrun -d "$NODE" layer load "$(printf 'x%.0s' $(seq 65))" l.geojson
	assert_rc 2 "65-character name"
	qrun -d "$NODE" layer load "$(printf 'x%.0s' $(seq 64))" l.geojson
	assert_rc 0 "64-character name"
	# A node that was never initialised has nowhere to put layers.
	qrun -d "$QP_CASE_DIR/nonode" layer load x l.geojson
	assert_rc 1 "load into a missing data dir"
	assert_err_one_line
	[ ! -e "$QP_CASE_DIR/nonode" ] || fail "load created a data dir"
	# check plots needs quipud.
	qrun -d "$NODE" check plots
	assert_rc 3 "check plots without quipud"
}
