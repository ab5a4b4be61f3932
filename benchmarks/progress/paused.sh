#!/bin/bash
# Run "$@" with the queue paused: a two-thread job beside other CPU work slows many times over, so the queue is killed
# (loop, then the job's process group; the job resumes from its last checkpoint) and restarted after.
cd "$(dirname "$0")/../.."
pkill -f 'progress/queue.sh|runs/queue.sh'
[ -f runs/job.pid ] && kill -- -"$(cat runs/job.pid)" 2>/dev/null
sleep 3
"$@"; rc=$?
setsid nohup benchmarks/progress/queue.sh >> runs/queue.log 2>&1 < /dev/null &
exit $rc
