#!/bin/bash
# demo.sh - a small day of field work in the selva central of Junín, end to
# end through quipud and quipu (`make demo`).
#
# Usage: tests/demo.sh BINDIR
# Everything lives in ./demo-data (wiped first): the node in demo-data/node,
# the daemon's log in demo-data/quipud.log, exports in demo-data/export/.
# Any failing step stops the demo with a message and a non-zero exit; the
# daemon is always stopped.
set -euo pipefail
shopt -s inherit_errexit

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 BINDIR" >&2
	exit 2
fi
BIN=$(cd "$1" && pwd)
QUIPU="$BIN/quipu"
QUIPUD="$BIN/quipud"
DATA="$PWD/demo-data"
NODE="$DATA/node"
EXPORT="$DATA/export"
QPD_PID=""
HUB_PID=""
HUB="$DATA/hub"
STEP="start"

unset QUIPU_DATA
export LC_ALL=C.UTF-8

stop_daemon() {
	local i rc=0
	[ -n "$QPD_PID" ] || return 0
	kill -TERM "$QPD_PID" 2>/dev/null || true
	for i in $(seq 1 100); do
		kill -0 "$QPD_PID" 2>/dev/null || break
		# A zombie still answers kill -0: look at its state.
		[ "$(sed 's/.*) //' "/proc/$QPD_PID/stat" 2>/dev/null | cut -d' ' -f1)" != Z ] || break
		sleep 0.1
	done
	kill -KILL "$QPD_PID" 2>/dev/null || true
	wait "$QPD_PID" || rc=$?
	QPD_PID=""
	return "$rc"
}

stop_hub() {
	[ -n "$HUB_PID" ] || return 0
	kill -TERM "$HUB_PID" 2>/dev/null || true
	wait "$HUB_PID" 2>/dev/null || true
	HUB_PID=""
}

on_exit() {
	local rc=$?
	trap - EXIT
	stop_hub
	if [ -n "$QPD_PID" ]; then
		stop_daemon || true
	fi
	if [ "$rc" -ne 0 ]; then
		echo >&2
		echo "demo: FAILED during: $STEP (exit $rc)" >&2
		if [ -f "$DATA/quipud.log" ]; then
			echo "demo: last lines of $DATA/quipud.log:" >&2
			tail -n 15 "$DATA/quipud.log" | sed 's/^/  /' >&2
		fi
	fi
	exit "$rc"
}
trap on_exit EXIT
exec 3>&1

step() {
	STEP=$*
	printf '\n== %s\n' "$*"
}

# Show a command, then run it.
run() {
	printf '$ quipu %s\n' "$*"
	"$QUIPU" -d "$NODE" "$@"
}

# add KIND JSON: show the record, add it, show its id (on fd 3, the
# terminal) and print it (for the caller to capture).  At the hub when
# AT=hub.
add() {
	local id dir=$NODE shown=""
	if [ "${AT:-}" = hub ]; then
		dir=$HUB
		shown="-d demo-data/hub "
	fi
	printf '$ echo %s | quipu %sadd %s\n' "'$2'" "$shown" "$1" >&3
	id=$(printf '%s\n' "$2" | "$QUIPU" -d "$dir" add "$1")
	printf '%s\n' "$id" >&3
	printf '%s\n' "$id"
}

# ruc BASE10: append the SUNAT check digit (weights 5432765432, 11 - sum
# mod 11, where 10 -> 0 and 11 -> 1).
ruc() {
	local b=$1 s=0 i=0 d r
	for d in 5 4 3 2 7 6 5 4 3 2; do
		s=$((s + ${b:i:1} * d))
		i=$((i + 1))
	done
	r=$((11 - s % 11))
	[ "$r" -eq 10 ] && r=0
	[ "$r" -eq 11 ] && r=1
	printf '%s%s\n' "$b" "$r"
}

for b in "$QUIPU" "$QUIPUD"; do
	[ -x "$b" ] || { echo "demo: $b missing (run make)" >&2; exit 1; }
done

step "1. A fresh field node in demo-data/node"
rm -rf "$DATA"
mkdir -p "$DATA" "$EXPORT"
run init --role field
echo "(the line above is this tablet's public key; the secret key is $NODE/key, mode 0600)"

step "2. Start quipud (log in demo-data/quipud.log)"
"$QUIPUD" -d "$NODE" >"$DATA/quipud.log" 2>&1 &
QPD_PID=$!
for _ in $(seq 1 200); do
	kill -0 "$QPD_PID" 2>/dev/null || { echo "demo: quipud exited" >&2; exit 1; }
	if [ -S "$NODE/quipud.sock" ] && "$QUIPU" -d "$NODE" status >/dev/null 2>&1; then
		break
	fi
	sleep 0.05
done
"$QUIPU" -d "$NODE" status >/dev/null
echo "quipud is running (pid $QPD_PID), socket $NODE/quipud.sock"

# start_hub: run the hub's quipud and wait until it answers.
start_hub() {
	"$QUIPUD" -d "$HUB" >>"$DATA/hub.log" 2>&1 &
	HUB_PID=$!
	for _ in $(seq 1 200); do
		"$QUIPU" -d "$HUB" status >/dev/null 2>&1 && break
		sleep 0.05
	done
	"$QUIPU" -d "$HUB" status >/dev/null
}

step "3. The cooperative, registered at its hub; the tablet enrolled before the trip"
# The hub is the same binary in hub role, here on a free loopback port.
# A hub enrols devices only for organisations it holds: the cooperative
# is registered there and reaches the tablet when it joins.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '$ quipu -d demo-data/hub init --role hub --listen 127.0.0.1:%s\n' "$PORT"
"$QUIPU" -d "$HUB" init --role hub --listen "127.0.0.1:$PORT" >/dev/null
start_hub
RUC=$(ruc 2060371845)
ORG=$(AT=hub add org '{"ruc":"'"$RUC"'","name":"Cooperativa Agraria Cafetalera Valle Pichanaki","type":"cooperative","region":"Junín","province":"Chanchamayo","district":"Pichanaki"}')
KEY=$("$QUIPU" -d "$NODE" id)
printf '$ quipu -d demo-data/hub enroll --pubkey %s… --org %s --name "Tableta Pichanaki 1"\n' "${KEY:0:16}" "$ORG"
TOKEN=$("$QUIPU" -d "$HUB" enroll --pubkey "$KEY" --org "$ORG" --name "Tableta Pichanaki 1")
printf '%s…\n' "${TOKEN:0:60}"
run join "$TOKEN"
run sync --wait --timeout 60
run get "$ORG"
echo "(off to the field: no signal there, the hub is out of reach until step 14)"
stop_hub

step "4. Four producers registered during the morning visit"
P_ROSA=$(add producer '{"org":"'"$ORG"'","dni":"41829376","name":"Rosa Huamán Quispe","sex":"F","community":"Alto Pichanaki","phone":"964 312 775","birth_year":1979}')
P_JUAN=$(add producer '{"org":"'"$ORG"'","dni":"43902715","name":"Juan Carlos Mamani Ccori","sex":"M","community":"Alto Pichanaki"}')
P_ELENA=$(add producer '{"org":"'"$ORG"'","dni":"45120983","name":"Elena Poma Layme","sex":"F","community":"San José de Anapiari","birth_year":1988}')
P_TEO=$(add producer '{"org":"'"$ORG"'","dni":"40716254","name":"Teodoro Ríos Chuquimantari","sex":"M","community":"San José de Anapiari"}')

step "5. Plots: a boundary walked with GPS (8.5 ha polygon) and a small plot as a point"
PLOT_ROSA=$(add plot '{"org":"'"$ORG"'","producer":"'"$P_ROSA"'","crop":"coffee","geometry":{"type":"Polygon","coordinates":[[[-74.912345,-10.901234],[-74.910187,-10.900876],[-74.909452,-10.902611],[-74.910963,-10.903958],[-74.912871,-10.903102],[-74.912345,-10.901234]]]},"area_ha":8.5,"accuracy_m":4.2,"altitude_m":1180,"captured_at":"2026-11-23T07:45:00-05:00"}')
PLOT_JUAN=$(add plot '{"org":"'"$ORG"'","producer":"'"$P_JUAN"'","crop":"coffee","geometry":{"type":"Point","coordinates":[-74.905678,-10.897654]},"area_ha":1.8,"accuracy_m":6.0,"altitude_m":1240,"captured_at":"2026-11-23T08:20:00-05:00"}')

step "6. A training service, today's session and who came"
SVC=$(add service '{"org":"'"$ORG"'","title":"Manejo integrado de la roya","area":"production","provider":"Equipo técnico de la cooperativa","sessions_planned":3,"hours":12}')
add commitment '{"org":"'"$ORG"'","service":"'"$SVC"'","accepted":true,"signed_by":"Presidente del consejo de administración","signed_at":"2026-11-10"}' >/dev/null
SES=$(add session '{"org":"'"$ORG"'","service":"'"$SVC"'","starts_at":"2026-11-23T09:00:00-05:00","ends_at":"2026-11-23T12:30:00-05:00","place":{"type":"Point","coordinates":[-74.908123,-10.899456]},"mode":"in-person","facilitator":"Ing. Luis Quispe Rojas"}')
printf '%s\n' \
	'{"org":"'"$ORG"'","session":"'"$SES"'","producer":"'"$P_ROSA"'","status":"present"}' \
	'{"org":"'"$ORG"'","session":"'"$SES"'","producer":"'"$P_JUAN"'","status":"present"}' \
	'{"org":"'"$ORG"'","session":"'"$SES"'","producer":"'"$P_ELENA"'","status":"absent"}' \
	'{"org":"'"$ORG"'","session":"'"$SES"'","producer":"'"$P_TEO"'","status":"left-early"}' \
	'{"org":"'"$ORG"'","session":"'"$SES"'","dni":"47283910","name":"Marcelino Ccahuana Soto","status":"present"}' \
	>"$DATA/attendance.jsonl"
echo "(five attendance lines, one of them a neighbour who is not registered, sent as one all-or-nothing request)"
run add attendance --file "$DATA/attendance.jsonl"

step "7. Afternoon at the collection centre: cherry received, merged, pulped to parchment, shipped"
CH_ROSA=$(add lot '{"org":"'"$ORG"'","code":"CER-2026-0311","product":"coffee-cherry","kg":1200,"producer":"'"$P_ROSA"'","plots":["'"$PLOT_ROSA"'"]}')
add lot_event '{"org":"'"$ORG"'","lot":"'"$CH_ROSA"'","type":"receive"}' >/dev/null
CH_JUAN=$(add lot '{"org":"'"$ORG"'","code":"CER-2026-0312","product":"coffee-cherry","kg":800,"producer":"'"$P_JUAN"'","plots":["'"$PLOT_JUAN"'"]}')
add lot_event '{"org":"'"$ORG"'","lot":"'"$CH_JUAN"'","type":"receive"}' >/dev/null
MIX=$(add lot '{"org":"'"$ORG"'","code":"ACO-2026-0031","product":"coffee-cherry","kg":2000}')
add lot_event '{"org":"'"$ORG"'","lot":"'"$MIX"'","type":"merge","inputs":[{"lot":"'"$CH_ROSA"'","kg":1200},{"lot":"'"$CH_JUAN"'","kg":800}],"outputs":[{"lot":"'"$MIX"'","kg":2000}]}' >/dev/null
LOT=$(add lot '{"org":"'"$ORG"'","code":"PCH-2026-0147","product":"coffee-parchment","kg":420,"quality":{"humidity_pct":11.8,"defects_per_300g":14}}')
add lot_event '{"org":"'"$ORG"'","lot":"'"$LOT"'","type":"transform","inputs":[{"lot":"'"$MIX"'","kg":2000}],"outputs":[{"lot":"'"$LOT"'","kg":420}]}' >/dev/null
add lot_event '{"org":"'"$ORG"'","lot":"'"$LOT"'","type":"ship","destination":"Hamburg, DE","container":"MSKU1234565","document":"BL-CLL-2026-0881"}' >/dev/null
add verification '{"org":"'"$ORG"'","target":"'"$PLOT_ROSA"'","method":"GPS perimeter walk","result":"confirmed","notes":"Linderos recorridos con la productora"}' >/dev/null

step "8. A mistake refused on the spot (a DNI with 7 digits)"
printf '$ quipu add producer <<< {... "dni":"4512098" ...}\n'
if printf '%s\n' '{"org":"'"$ORG"'","dni":"4512098","name":"Dígito Faltante","sex":"F"}' |
	"$QUIPU" -d "$NODE" add producer; then
	echo "demo: the invalid DNI was accepted" >&2
	exit 1
fi
echo "(refused as it should be: nothing was written)"
printf '$ quipu add lot_event <<< {... 300 kg more from ACO-2026-0031, already pulped ...}\n'
if printf '%s\n' '{"org":"'"$ORG"'","lot":"'"$LOT"'","type":"transform","inputs":[{"lot":"'"$MIX"'","kg":300}],"outputs":[{"lot":"'"$LOT"'","kg":60}]}' |
	"$QUIPU" -d "$NODE" add lot_event; then
	echo "demo: a lot was used twice" >&2
	exit 1
fi
echo "(mass balance: a lot cannot give more than it holds)"

step "9. Read it back"
run get "$LOT"
run list producer
run list attendance --format csv

step "10. Export for the cooperative and the EUDR due-diligence file"
run export plot --format geojson -o "$EXPORT/plots.geojson"
run export producer --format csv -o "$EXPORT/producers.csv"
run export attendance --format csv -o "$EXPORT/attendance.csv"
run export lot --format jsonl -o "$EXPORT/lots.jsonl"
python3 - "$EXPORT/plots.geojson" <<'PY'
import json, sys
fc = json.load(open(sys.argv[1]))
assert fc["type"] == "FeatureCollection", fc.get("type")
print("plots.geojson: %d features; first coordinate %s" % (
    len(fc["features"]),
    json.dumps(fc["features"][0]["geometry"]["coordinates"][0][0]
               if fc["features"][0]["geometry"]["type"] == "Polygon"
               else fc["features"][0]["geometry"]["coordinates"])))
PY
run trace PCH-2026-0147
run dds PCH-2026-0147 -o "$EXPORT/dds-PCH-2026-0147.geojson"
ls -l "$EXPORT"

step "11. Node status"
run status

step "12. Verify every signature and hash link, rebuild the state from the log"
run verify

step "13. Back the tablet up while quipud runs (to its memory card, here demo-data/sd-card)"
mkdir -p "$DATA/sd-card"
run backup "$DATA/sd-card/quipu-$(date -u +%Y%m%dT%H%M%SZ)"

step "14. Signal at last: sync with the cooperative's hub"
start_hub
run sync --wait --timeout 60
NODE_DIGEST=$("$QUIPU" -d "$NODE" status --json --digest | python3 -c 'import json, sys; print(json.load(sys.stdin)["store"]["digest"])')
HUB_DIGEST=$("$QUIPU" -d "$HUB" status --json --digest | python3 -c 'import json, sys; print(json.load(sys.stdin)["store"]["digest"])')
echo "tablet state digest: $NODE_DIGEST"
echo "hub state digest:    $HUB_DIGEST"
[ "$NODE_DIGEST" = "$HUB_DIGEST" ] || { echo "demo: the hub and the tablet differ" >&2; exit 1; }
printf '$ quipu -d demo-data/hub peers\n'
"$QUIPU" -d "$HUB" peers
printf '$ quipu -d demo-data/hub report attendance\n'
"$QUIPU" -d "$HUB" report attendance
printf '$ quipu -d demo-data/hub check lots\n'
"$QUIPU" -d "$HUB" check lots
printf '$ quipu -d demo-data/hub check plots\n'
"$QUIPU" -d "$HUB" check plots
stop_hub

step "15. Stop quipud"
STEP="stopping quipud"
if stop_daemon; then
	echo "quipud stopped cleanly"
else
	echo "demo: quipud did not exit cleanly" >&2
	exit 1
fi
[ ! -e "$NODE/quipud.sock" ] || { echo "demo: socket left behind" >&2; exit 1; }
printf '\nDemo complete. Data: %s  Exports: %s\n' "$DATA" "$EXPORT"
