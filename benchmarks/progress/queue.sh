#!/bin/bash
# The background queue of the long runs: runs/jobs.txt one line at a time, each in its own process group; a line is
# removed when it ends well, and a failed one stops the queue. A killed queue leaves its line: the job resumes from
# its checkpoints when the queue restarts.
# On a fresh machine runs/jobs.txt starts as a copy of benchmarks/progress/jobs.txt (every line skips what is done).
#   setsid nohup benchmarks/progress/queue.sh >> runs/queue.log 2>&1 < /dev/null &
cd "$(dirname "$0")/../.."
mkdir -p runs
[ -f runs/jobs.txt ] || grep -v '^#' benchmarks/progress/jobs.txt | grep . > runs/jobs.txt
while true; do
  line=$(head -1 runs/jobs.txt)
  [ -z "$line" ] && { echo "$(date -u +%FT%T) queue empty"; exit 0; }
  echo "$(date -u +%FT%T) start: $line"
  setsid bash -c "$line" &
  job=$!; echo $job > runs/job.pid
  wait $job; rc=$?
  echo "$(date -u +%FT%T) exit $rc: $line"
  if [ $rc -ne 0 ]; then   # the later lines may read what this one should have made: stop, the line kept
    echo "$(date -u +%FT%T) queue stopped: the line above failed (its log says why); fix it, then start the queue"
    exit $rc
  fi
  if [ "$(head -1 runs/jobs.txt)" = "$line" ]; then tail -n +2 runs/jobs.txt > runs/jobs.txt.new && mv runs/jobs.txt.new runs/jobs.txt; fi
done
