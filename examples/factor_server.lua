-- The factorising server (multiprocessing managers articles): 1,000 numbers from
-- 999999999999, in chunks of 43, go through a job queue to consumers that factorise each
-- chunk and put the factors on a result queue.
--
--   cluster start -n 4 --daemon && cluster run examples/factor_server.lua

jobs, results = Queue("fs:jobs"), Queue("fs:results")
first, count, chunk_size = 999999999999, 1000, 43
while jobs:qsize() > 0 do jobs:get_many(1000) end
while results:qsize() > 0 do results:get_many(1000) end

numbers, chunks = {}, {}
for k = 1, count do
  numbers[k] = first + k - 1
  local c = (k - 1) // chunk_size + 1
  chunks[c] = chunks[c] or {index = c, numbers = {}}
  table.insert(chunks[c].numbers, numbers[k])
end

function factor_chunks()
  local jobs, results = Queue("fs:jobs"), Queue("fs:results")
  local done = 0
  while true do
    local chunk = jobs:get()
    if chunk == "stop" then return done end
    local out = {}
    for k, x in ipairs(chunk.numbers) do out[k] = factorize_naive(x) end
    results:put({index = chunk.index, factors = out})
    done = done + 1
  end
end

jobs:put_many(chunks)
for _ in ipairs(rc.ids) do jobs:put("stop") end
ar = dview:apply_async(factor_chunks)
by_chunk = {}
for i = 1, #chunks do
  local r = results:get(120)
  by_chunk[r.index] = r.factors
end
per_engine = ar:get()
print(string.format("%d numbers from %d, %d chunks of up to %d, factorised in %.3f s; chunks per engine: %s",
  count, first, #chunks, chunk_size, ar.elapsed, table.concat(per_engine, " ")))

-- Checks: every factorisation multiplies back to its number, and every factor is prime.
results_all = {}
for c = 1, #chunks do
  assert(by_chunk[c], "no result for chunk " .. c)
  for _, fs in ipairs(by_chunk[c]) do results_all[#results_all + 1] = fs end
end
do assert(#results_all == count, "got " .. #results_all .. " factorisations") end
distinct = {}
for k, fs in ipairs(results_all) do
  local product = 1
  for _, f in ipairs(fs) do product = product * f; distinct[f] = true end
  assert(product == numbers[k], numbers[k] .. " ~= " .. table.concat(fs, " * "))
end
factor_list = {}
for f in pairs(distinct) do factor_list[#factor_list + 1] = f end
for k, ok in ipairs(lview:map_sync("check_prime", factor_list)) do assert(ok, factor_list[k] .. " is not prime") end
print(string.format("%-16s  %s", "number", "factors"))
for _, k in ipairs({1, 2, count}) do print(string.format("%-16d  %s", numbers[k], table.concat(results_all[k], " * "))) end
print(string.format("all %d multiply back; %d distinct factors, all prime: ok", count, #factor_list))
