#!/usr/bin/env bash
# Runs the test suites. `all` = lint, typecheck, unit, integration. Starts the local stack when it is
# not already running and stops it afterwards (only what this script started). On failure it prints
# the tail of every server's log. Ends with one line "N passed, N failed[, N skipped]".
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-all}
results_dir=.stack/test-results
mkdir -p "$results_dir"
rm -f "$results_dir"/*.json

started_stack=0
cleanup() {
  local code=$?
  if [[ $code -ne 0 && -d .stack ]]; then
    echo "--- test run failed: tail of every server log ---"
    bash hack/stack.sh logs-dump 2>/dev/null || true
  fi
  if [[ $started_stack -eq 1 ]]; then
    echo "--- stopping the stack this run started ---"
    bash hack/stack.sh down || true
  fi
  # Last, so the tail of a failed run names what failed (the server logs above are long).
  if [[ $code -ne 0 ]]; then failures || true; fi
  exit "$code"
}
trap cleanup EXIT

run_vitest() {
  local project=$1
  npx vitest run --project "$project" --reporter=default --reporter=json \
    --outputFile.json="$results_dir/$project.json"
}

summary() {
  node -e '
    const fs = require("fs");
    let passed = 0, failed = 0, skipped = 0;
    for (const f of fs.readdirSync(process.argv[1])) {
      const r = JSON.parse(fs.readFileSync(process.argv[1] + "/" + f, "utf8"));
      passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
    }
    console.log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
  ' "$results_dir"
}

# Every failed test of this run with the first lines of its error, from the JSON reports.
failures() {
  node -e '
    const fs = require("fs");
    const dir = process.argv[1];
    const lines = [];
    for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      const report = JSON.parse(fs.readFileSync(dir + "/" + f, "utf8"));
      for (const file of report.testResults) {
        const failed = file.assertionResults.filter((t) => t.status === "failed");
        if (file.status === "failed" && failed.length === 0) lines.push(`${file.name}: ${String(file.message).split("\n").slice(0, 6).join("\n    ")}`);
        for (const t of failed) {
          const first = (t.failureMessages[0] ?? "").split("\n").slice(0, 6).join("\n    ");
          lines.push(`${file.name} > ${t.fullName}\n    ${first}`);
        }
      }
    }
    if (lines.length) console.log("--- failed tests ---\n" + lines.join("\n"));
  ' "$results_dir"
}

if [[ $mode == all ]]; then
  echo "--- lint ---"
  npm run --silent lint
  echo "--- typecheck ---"
  npm run --silent typecheck
fi

status=0
if [[ $mode == all || $mode == unit ]]; then
  echo "--- unit tests ---"
  run_vitest unit || status=$?
fi

if [[ $mode == all || $mode == integration ]]; then
  if ! bash hack/stack.sh status >/dev/null 2>&1; then
    if ! bash hack/stack.sh any-running >/dev/null 2>&1; then started_stack=1; fi
    echo "--- starting the local stack ---"
    bash hack/stack.sh up
  fi
  echo "--- integration tests (real Redis/Sentinel, MariaDB, Kafka) ---"
  run_vitest integration || status=$?
fi

summary
exit "$status"
