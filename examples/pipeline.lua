-- The NSQ-style pipeline (High Performance Python's cluster chapter): numbers are published
-- to a topic; consumers read them, test each for primality and republish it to `primes` or
-- `non_primes`; a subscriber counts what arrives.
--
-- Topics broadcast: every subscriber gets every message published after it subscribed. NSQ
-- shares a channel's messages between its consumers; here consumer j of n takes the numbers
-- with x % n == j instead, so each number is tested once.
--
--   cluster start -n 4 --daemon && cluster run examples/pipeline.lua

count = 10000
n = #rc.ids
ready = Queue("nsq:ready")
while ready:qsize() > 0 do ready:get_many(1000) end

primes_sub, others_sub = Subscribe("nsq:primes"), Subscribe("nsq:non_primes")

-- Consumer j of n: returns how many primes and non-primes it republished.
function consumer(j, n)
  local sub = Subscribe("nsq:numbers")
  Queue("nsq:ready"):put(j)
  local p, q = 0, 0
  while true do
    local x = sub:get()
    if x == "stop" then sub:close(); return {p, q} end
    if x % n == j then
      if check_prime(x) then
        publish("nsq:primes", x); p = p + 1
      else
        publish("nsq:non_primes", x); q = q + 1
      end
    end
  end
end

ars = {}
for j, id in ipairs(rc.ids) do ars[j] = rc[id]:apply_async(consumer, j - 1, n) end
-- Publish only once every consumer listens.
for _ = 1, n do ready:get(60) end
for x = 1, count do publish("nsq:numbers", x) end
do publish("nsq:numbers", "stop") end

p_total, q_total = 0, 0
for _, ar in ipairs(ars) do
  local pq = ar:get()
  p_total, q_total = p_total + pq[1], q_total + pq[2]
end

-- Everything a consumer published is in our subscriptions' buffers by the time it returned.
function take(sub, k)
  local out = {}
  while #out < k do
    for _, x in ipairs(sub:get_many(math.min(1000, k - #out), 30)) do out[#out + 1] = x end
  end
  return out
end
found, other = take(primes_sub, p_total), take(others_sub, q_total)
primes_sub:close(); others_sub:close()
print(string.format("%d numbers published to nsq:numbers, tested by %d consumers", count, n))
print(string.format("nsq:primes got %d, nsq:non_primes got %d", #found, #other))

-- Checks: every number arrived on exactly one topic, and there are 1,229 primes below 10,000.
seen = {}
for _, x in ipairs(found) do seen[x] = true end
for _, x in ipairs(other) do assert(not seen[x], x .. " arrived twice"); seen[x] = true end
for x = 1, count do assert(seen[x], x .. " never arrived") end
do assert(#found == 1229, "expected 1229 primes, counted " .. #found) end
print("1229 primes below 10000, every number once: ok")
