-- The managers' job queue (multiprocessing managers articles): a server holds a job queue
-- and a result queue; consumers on other hosts take jobs until a sentinel and put results
-- back. Here the controller holds the queues, and every engine (started by `cluster
-- start`, or on another host with `cluster engines --file controller-engine.json`) is a
-- consumer. A job is k; its result is {k, primes(k)}, the k-th prime (2 is the 0th).
--
--   cluster start -n 4 --daemon && cluster run examples/job_queue.lua

jobs, results = Queue("mq:jobs"), Queue("mq:results")
count = 1000
-- Left from an earlier, interrupted run: start empty.
while jobs:qsize() > 0 do jobs:get_many(1000) end
while results:qsize() > 0 do results:get_many(1000) end

-- The consumer: take a job, do it, put the result, until the sentinel; return how many.
function consume()
  local jobs, results = Queue("mq:jobs"), Queue("mq:results")
  local done = 0
  while true do
    local k = jobs:get()
    if k == "stop" then return done end
    results:put({k, primes(k)})
    done = done + 1
  end
end

ks = {}
for k = 0, count - 1 do ks[#ks + 1] = k end
jobs:put_many(ks)
for _ in ipairs(rc.ids) do jobs:put("stop") end
ar = dview:apply_async(consume)

got = {}
for i = 1, count do
  local r = results:get(60)
  got[r[1]] = r[2]
end
per_engine = ar:get()
print(string.format("%d jobs through Queue(\"mq:jobs\") in %.3f s; per engine: %s", count, ar.elapsed,
  table.concat(per_engine, " ")))

-- Checks: every engine's count adds up to the jobs; each k has a result; they increase,
-- begin 2, 3, 5, 7, end 7919, and every one is prime (Miller-Rabin on the engines).
total = 0
for _, c in ipairs(per_engine) do total = total + c end
do assert(total == count, "consumers did " .. total .. " jobs") end
ps = {}
for k = 0, count - 1 do
  assert(got[k], "no result for job " .. k)
  ps[k + 1] = got[k]
end
for k, p in ipairs({2, 3, 5, 7}) do assert(ps[k] == p, "primes(" .. (k - 1) .. ") = " .. ps[k]) end
for k = 2, #ps do assert(ps[k] > ps[k - 1], "not increasing at " .. k) end
do assert(ps[count] == 7919, "the 1000th prime is 7919") end
for k, ok in ipairs(lview:map_sync("check_prime", ps)) do assert(ok, ps[k] .. " is not prime") end
do assert(jobs:qsize() == 0 and results:qsize() == 0, "queues left non-empty") end
print("all 1000 results, 2 to 7919, all prime: ok")
