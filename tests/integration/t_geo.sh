# t_geo.sh - plot geometry goes through the EUDR checks (proto/geo.h) at
# write time: a broken geometry is refused naming ring and vertex, a wrong
# winding is fixed before it is stored, a declared area far from the
# measured one is accepted with a warning, and `get --meta` shows the
# measured area.

# About 1 ha near Satipo, counter-clockwise (RFC 7946), and the same ring
# clockwise; a bow-tie of the same corners.
GEO_CCW='[[[-74.640000,-11.250000],[-74.639085,-11.250000],[-74.639085,-11.249100],[-74.640000,-11.249100],[-74.640000,-11.250000]]]'
GEO_CW='[[[-74.640000,-11.250000],[-74.640000,-11.249100],[-74.639085,-11.249100],[-74.639085,-11.250000],[-74.640000,-11.250000]]]'
GEO_BOWTIE='[[[-74.640000,-11.250000],[-74.639085,-11.249100],[-74.639085,-11.250000],[-74.640000,-11.249100],[-74.640000,-11.250000]]]'

# geo_setup: a node with an org and a producer ($ORG, $P).
geo_setup() {
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	qpd_start "$NODE"
	ORG=$(add org '{"ruc":"'"$(ruc 2060555444)"'","name":"Cooperativa Satipo","type":"cooperative"}')
	P=$(add producer '{"org":"'"$ORG"'","dni":"41234567","name":"Rosa Quispe","sex":"F"}')
}

# geo_plot COORDS [EXTRA]: a plot's JSON with polygon COORDS.
geo_plot() {
	printf '{"org":"%s","producer":"%s","crop":"coffee","geometry":{"type":"Polygon","coordinates":%s}%s}\n' \
		"$ORG" "$P" "$1" "${2:-}"
}

# geo_refused FILE WANT: adding plot FILE exits 1 with one line holding
# WANT, and nothing is written.
geo_refused() {
	local d0
	d0=$(status_num "$NODE" deltas)
	qrun -d "$NODE" add plot --file "$1"
	assert_rc 1 "add of $1"
	assert_err_one_line
	assert_err_has "$2"
	assert_eq "$(status_num "$NODE" deltas)" "$d0" "deltas after refusal"
	assert_eq "$(count plot)" 0 "plots after refusal"
}

qp_case geo_refused
case_geo_refused() {
	geo_setup
	geo_plot "$GEO_BOWTIE" >bow.json
	geo_refused bow.json "line 1: plot.geometry: ring 0 self-intersects near vertex"
	# The vertex named comes with its coordinates.
	assert_err_has "(-74.6"
	# A Point stands for at most 4 ha (EUDR Art. 2(28)).
	printf '{"org":"%s","producer":"%s","crop":"coffee","geometry":{"type":"Point","coordinates":[-74.64,-11.25]},"area_ha":5}\n' \
		"$ORG" "$P" >pt.json
	geo_refused pt.json "plots over 4 ha need a polygon"
	# A batch holding one bad plot is refused whole, naming its line.
	{ geo_plot "$GEO_CCW"; geo_plot "$GEO_BOWTIE"; } >two.jsonl
	geo_refused two.jsonl "line 2: plot.geometry: ring 0 self-intersects"
	qpd_stop "$NODE"
	assert_eq "$QPD_STATUS" 0 "quipud exit status"
}

qp_case geo_accepted
case_geo_accepted() {
	local A B C ring
	geo_setup

	# Valid: stored as given, measured area in the meta, no warning.
	geo_plot "$GEO_CCW" ',"area_ha":1.0,"accuracy_m":3' >ok.json
	qrun -d "$NODE" add plot --file ok.json
	assert_rc 0 "add of a valid plot"
	[ ! -s err ] || fail "unexpected stderr: $(cat err)"
	A=$(cat out)
	is_id "$A" || fail "add printed '$A'"
	q -d "$NODE" get "$A" --meta >a.json
	python3 - a.json <<'EOF' || fail "meta of the valid plot"
import json, sys
d = json.load(open(sys.argv[1]))
m = d.get("meta", d)
ha = m["area_ha_measured"]
assert 0.95 < ha < 1.05, ha
assert "warnings" not in m, m
EOF

	# Clockwise: accepted, stored counter-clockwise.
	geo_plot "$GEO_CW" >cw.json
	qrun -d "$NODE" add plot --file cw.json
	assert_rc 0 "add of a clockwise plot"
	assert_err_has "quipu: warning: line 1: plot.geometry: ring winding turned to RFC 7946 (outer rings counter-clockwise, holes clockwise)"
	B=$(cat out)
	q -d "$NODE" get "$B" >b.json
	ring=$(python3 - b.json <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
r = d.get("record", d)["geometry"]["coordinates"][0]
s = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(r, r[1:]))
print("ccw" if s > 0 else "cw")
EOF
	)
	assert_eq "$ring" ccw "winding of the stored ring"
	# Other fields of a plot can be corrected without redrawing it.
	printf '{"crop":"cacao"}' >crop.json
	qrun -d "$NODE" update "$B" --file crop.json
	assert_rc 0 "update of the crop"

	# Declared 3.2 ha for about 1 ha: accepted, warned on stderr, exit 0.
	geo_plot "$GEO_CCW" ',"area_ha":3.2' >far.json
	qrun -d "$NODE" add plot --file far.json
	assert_rc 0 "add of a plot with a wrong declared area"
	C=$(cat out)
	is_id "$C" || fail "add printed '$C'"
	assert_err_has "quipu: warning: line 1: plot.geometry: declared area 3.20 ha differs from measured 0.99"
	assert_err_has " ha by 69%"
	q -d "$NODE" get "$C" --meta >c.json
	grep -qF "declared area 3.20 ha" <<<"$(py find c.json warnings)" ||
		fail "meta.warnings of the plot"
	# The same through import, naming the file's line.
	{ geo_plot "$GEO_CCW"; geo_plot "$GEO_CCW" ',"area_ha":3.2'; } >imp.jsonl
	qrun -d "$NODE" import imp.jsonl --kind plot
	assert_rc 0 "import with a warning"
	assert_err_has "quipu: warning: line 2: plot.geometry: declared area 3.20 ha"

	assert_eq "$(count plot)" 5 "plots listed"
	# The log holds what the state holds: a rebuild matches.
	q -d "$NODE" verify >/dev/null
	qpd_stop "$NODE"
	assert_eq "$QPD_STATUS" 0 "quipud exit status"
}

# The plot-check thresholds come from node.json ("plots"); they only decide
# warnings, and a bad value stops quipud at start with the key named.
qp_case geo_thresholds
case_geo_thresholds() {
	geo_setup
	geo_plot "$GEO_CCW" ',"accuracy_m":20' >acc.json
	qrun -d "$NODE" add plot --file acc.json
	assert_rc 0 "add of a plot walked at 20 m accuracy"
	assert_err_has "quipu: warning: line 1: plot.geometry: "
	assert_err_has "20"
	qpd_stop "$NODE"
	python3 - "$NODE/node.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["plots"] = {"max_accuracy_m": 30, "area_tolerance_pct": 5}
json.dump(c, open(sys.argv[1], "w"))
PY
	qpd_start "$NODE"
	qrun -d "$NODE" add plot --file acc.json
	assert_rc 0 "add with a 30 m threshold"
	[ ! -s "$QP_CASE_DIR/err" ] || fail "warned with a 30 m threshold: $(cat "$QP_CASE_DIR/err")"
	qpd_stop "$NODE"
	python3 - "$NODE/node.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["plots"] = {"max_accuracy_m": -1}
json.dump(c, open(sys.argv[1], "w"))
PY
	timeout 10 "$QUIPUD" -d "$NODE" >"$QP_CASE_DIR/qpd.out" 2>&1 && fail "quipud started with a bad threshold"
	grep -qF "plots.max_accuracy_m: must be a positive number" "$QP_CASE_DIR/qpd.out" ||
		fail "quipud's message: $(cat "$QP_CASE_DIR/qpd.out")"
	# The rest of node.json is checked the same way.
	echo '{"version":1,"role":"fieldx"}' >"$NODE/node.json"
	timeout 10 "$QUIPUD" -d "$NODE" >"$QP_CASE_DIR/qpd.out" 2>&1 && fail "quipud started with role fieldx"
	grep -qF 'node.json: role: must be "field" or "hub"' "$QP_CASE_DIR/qpd.out" ||
		fail "quipud's message: $(cat "$QP_CASE_DIR/qpd.out")"
	[ "$(grep -c '' "$QP_CASE_DIR/qpd.out")" -eq 1 ] || fail "not one line: $(cat "$QP_CASE_DIR/qpd.out")"
}
