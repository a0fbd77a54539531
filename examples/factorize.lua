-- Factorise 999 twelve-digit odd numbers, 43 to a task, through the load-balanced view
-- (the multiprocessing chapter's chunked map), and check every answer.
--
--   cluster start -n 4 --daemon && cluster run examples/factorize.lua
--
-- factorize_naive(n) is a native built-in (trial division); the chunk loop is a Lua
-- function, shipped to the engines as source and compiled there once.

first, count, chunk_size = 999999999999, 999, 43
numbers = {}
for k = 1, count do numbers[k] = first + 2 * (k - 1) end
chunks = {}
for k, x in ipairs(numbers) do
  local c = (k - 1) // chunk_size + 1
  chunks[c] = chunks[c] or {}
  table.insert(chunks[c], x)
end
print(string.format("%d numbers from %d to %d, %d tasks of up to %d", count, numbers[1], numbers[count], #chunks, chunk_size))

function factorize_chunk(xs)
  local out = {}
  for k, x in ipairs(xs) do out[k] = factorize_naive(x) end
  return out
end

ar = lview:map_async(factorize_chunk, chunks)
per_chunk = ar:get()
print(string.format("factorised in %.3f s", ar.elapsed))

-- Flatten, then check: every factorisation multiplies back to its number, and every
-- factor is prime (Miller-Rabin on the engines).
results, distinct, primes_found = {}, {}, 0
for _, list in ipairs(per_chunk) do for _, fs in ipairs(list) do table.insert(results, fs) end end
do assert(#results == count, "expected " .. count .. " factorisations, got " .. #results) end
for k, fs in ipairs(results) do
  local product = 1
  for _, f in ipairs(fs) do product = product * f; distinct[f] = true end
  assert(product == numbers[k], numbers[k] .. " ~= product of " .. table.concat(fs, " * "))
  if #fs == 1 then primes_found = primes_found + 1 end
end
factor_list = {}
for f in pairs(distinct) do table.insert(factor_list, f) end
table.sort(factor_list)
for k, is_prime in ipairs(lview:map_sync("check_prime", factor_list)) do assert(is_prime, factor_list[k] .. " is not prime") end

print(string.format("%-16s  %s", "number", "factors"))
for _, k in ipairs({1, 2, 3, count - 1, count}) do print(string.format("%-16d  %s", numbers[k], table.concat(results[k], " * "))) end
print(string.format("all %d multiply back; %d distinct factors, all prime; %d of the numbers are prime", count, #factor_list, primes_found))
