#!/usr/bin/env bash
# `npm run chaos:http [-- SEED REQUESTS]`: the fleet under fire through its HTTP API (SPEC §11).
# Starts the whole fleet (its Redis with AOF), sends seeded deposits, withdrawals and transfers with
# `curl`, SIGKILLs fleet processes along the way (the supervisor restarts them), kills Redis and starts
# it again on the same AOF, then waits for the fleet to settle and runs `verify`: it must pass, with
# the fleet's money conserved to the cent. Run under with-servers (the npm script does).
set -euo pipefail
cd "$(dirname "$0")/.."
SEED="${1:-42}"
REQUESTS="${2:-240}"
RANDOM="$SEED"
ADMIN="chaos-admin-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
PORT=$(node -e 'const s=require("net").createServer().listen(0,()=>{console.log(s.address().port);s.close()})')
API="http://127.0.0.1:$PORT/api/v1"
LOG=$(mktemp /tmp/chaos-http-fleet.XXXX.log)
say() { echo "[chaos-http] $*" >&2; }

ADMIN_API_KEY="$ADMIN" API_PORT="$PORT" LOG_LEVEL=warn FLEET_QUEUE_PREFIX="chaos-$SEED" node dist/scripts/fleet.js >"$LOG" 2>&1 &
FLEET=$!
RESTARTED_REDIS=""
cleanup() { kill -TERM "$FLEET" 2>/dev/null || true; wait "$FLEET" 2>/dev/null || true; [ -n "$RESTARTED_REDIS" ] && kill "$RESTARTED_REDIS" 2>/dev/null || true; }
trap cleanup EXIT
until curl -sf "$API/openapi.json" >/dev/null; do sleep 0.5; done
say "fleet up (log $LOG); seed $SEED, $REQUESTS requests"

post() { curl -s -o /dev/null -w '%{http_code}' -XPOST "$API/$1" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' -d "$2" || echo 000; }
ACCOUNTS=()
for i in 1 2 3 4; do
  id=$(curl -s -XPOST "$API/accounts?wait=true" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
    -d "{\"type\":\"GEN\",\"name\":\"chaos-$i\",\"ownerId\":\"chaos\",\"initialDeposit\":\"50000.00\",\"idempotencyKey\":\"chaos-open-$SEED-$i\"}" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).id))')
  ACCOUNTS+=("$id")
done

kill_a_service() {
  local pids; pids=$(pgrep -f 'dist/services/(account-ops|fork-executor|performance-snapshotter|api|alerter)/main.js' || true)
  [ -z "$pids" ] && return
  local victim; victim=$(echo "$pids" | sed -n "$(( RANDOM % $(echo "$pids" | wc -l) + 1 ))p")
  say "SIGKILL $(ps -o args= -p "$victim" | sed 's#.*/services/##; s#/main.js##') (pid $victim)"
  kill -9 "$victim" || true
}
restart_redis() {
  local port="${REDIS_URL##*:}"; port="${port%%/*}"
  local pid; pid=$(pgrep -f "redis-server.*:$port" | head -1)
  local dir; dir=$(readlink "/proc/$pid/cwd")
  say "SIGKILL redis (pid $pid), restarting it on the same AOF"
  kill -9 "$pid"; sleep 1
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly yes --maxmemory-policy noeviction --daemonize no >/dev/null 2>&1 &
  RESTARTED_REDIS=$!
}

codes=""
declare -A OWNER_OF
for n in $(seq 1 "$REQUESTS"); do
  a=${ACCOUNTS[$(( RANDOM % 4 ))]}; b=${ACCOUNTS[$(( RANDOM % 4 ))]}
  amount="$(( RANDOM % 900 + 1 )).$(( RANDOM % 90 + 10 ))"
  case $(( RANDOM % 3 )) in
    0) body="{\"kind\":\"deposit\",\"amount\":\"$amount\",\"idempotencyKey\":\"chaos-$SEED-$n\"}" ;;
    1) body="{\"kind\":\"withdrawal\",\"amount\":\"$amount\",\"idempotencyKey\":\"chaos-$SEED-$n\"}" ;;
    *) body="{\"kind\":\"transfer\",\"amount\":\"$amount\",\"toAccountId\":\"$b\",\"idempotencyKey\":\"chaos-$SEED-$n\"}" ;;
  esac
  OWNER_OF[$n]="$a"
  code=$(post "accounts/$a/transactions" "$body")
  # A request the API could not take (a restart, Redis down) is sent again with the same key, as a client would.
  for retry in 1 2 3 4 5 6 7 8 9 10; do
    case "$code" in 2??|4??) break ;; esac
    sleep 1; code=$(post "accounts/$a/transactions" "$body")
  done
  codes="$codes $code"
  if (( n % 50 == 25 )); then kill_a_service; fi
  if (( n == REQUESTS / 2 )); then restart_redis; fi
done
say "sent $REQUESTS requests: $(echo $codes | tr ' ' '\n' | sort | uniq -c | tr '\n' ' ')"

say "waiting for every operation to finish"
status_of() { curl -s "$API/operations/op.$1.$2" -H "Authorization: Bearer $ADMIN" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const j=JSON.parse(s);console.log(j.status??(j.error?.code==="not_found"?"lost":"error"))}catch{console.log("error")}})'; }
for attempt in $(seq 1 60); do
  summary=""
  for n in $(seq 1 "$REQUESTS"); do summary="$summary $(status_of "${OWNER_OF[$n]}" "chaos-$SEED-$n")"; done
  counts=$(echo $summary | tr ' ' '\n' | sort | uniq -c | tr '\n' ' ')
  case "$counts" in *queued*|*running*) sleep 3 ;; *) break ;; esac
done
say "outcomes: $counts"
case "$counts" in *lost*|*failed*|*error*|*queued*|*running*) say "some operations have no outcome"; exit 1 ;; esac

say "verify"
for attempt in $(seq 1 40); do
  if node dist/scripts/cli.js verify > /tmp/chaos-http-verify.json 2>/dev/null; then break; fi
  sleep 5
done
cat /tmp/chaos-http-verify.json
node -e '
  const r = JSON.parse(require("fs").readFileSync("/tmp/chaos-http-verify.json", "utf8"));
  const D = (s) => BigInt(String(s).replace(".", ""));
  const t = r.totals;
  const held = D(t.cash) + D(t.costBasis);
  const flows = D(t.deposits) - D(t.withdrawals) - D(t.fees) + D(t.dividends) + D(t.realisedPnl);
  const ok = r.ok && held === flows;
  console.error(`[chaos-http] verify ${r.ok ? "ok" : "FAILED"}; money held ${t.cash} + ${t.costBasis} at cost, flows ${flows / 100n}.${String(flows % 100n).padStart(2, "0")}: ${held === flows ? "conserved to the cent" : "NOT conserved"}`);
  process.exit(ok ? 0 : 1);
'
