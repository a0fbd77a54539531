-- Is it prime? Trial division of five numbers from High Performance Python, four ways:
--
--   serial       one engine divides by every odd number up to the square root
--   naive split  the odd-factor range is cut into one contiguous part per engine
--   less-naive   one engine first checks the factors below 21, then the split
--   early exit   the split, but the first engine to find a factor ends the search:
--                the client aborts the other engines' running ranges (ar:abort())
--   shared event the split, and the engines end the search themselves: each range is
--                given an Event's name; the engine that finds a factor sets it, and the
--                others see it within their check interval and stop (no client involved)
--
--   cluster start -n 4 --daemon && cluster run examples/primes.lua
--
-- check_prime_in_range(n, from, to) is the native built-in: true if no odd i in
-- [from, to) divides n. (`do assert(...) end` checks an answer without printing `true`.)

numbers = {112272535095295, 100109100129100369, 100109100129101027, 100109100129100151, 100109100129162907}
-- The known smallest factors (false: prime). Checked below, in Lua's exact integers.
factors = {5, 95362951, 171656941, false, false}
for k, f in ipairs(factors) do if f then assert(numbers[k] % f == 0, "bad factor") end end

ids = rc.ids
views = {}
for k, id in ipairs(ids) do views[k] = rc[id] end

-- The odd-factor range of x: [3, floor(sqrt(x)) + 1).
function factor_range(x)
  local r = math.floor(math.sqrt(x))
  while r * r > x do r = r - 1 end
  while (r + 1) * (r + 1) <= x do r = r + 1 end
  return 3, r + 1
end

-- [lo, hi) cut into k contiguous parts, each starting on an odd number.
function split(lo, hi, k)
  local parts, size = {}, (hi - lo) // k + 1
  for j = 0, k - 1 do
    local a = math.min(lo + j * size, hi)
    if a % 2 == 0 then a = a + 1 end
    parts[#parts + 1] = {a, math.min(lo + (j + 1) * size, hi)}
  end
  return parts
end

-- Each method returns (is x prime?, seconds from submission to the answer).
function serial(x)
  local lo, hi = factor_range(x)
  local ar = views[1]:apply_async("check_prime_in_range", x, lo, hi)
  return ar:get(), ar.elapsed
end

function submit_split(x, lo, hi)
  local ars = {}
  for j, part in ipairs(split(lo, hi, #views)) do
    ars[j] = views[j]:apply_async("check_prime_in_range", x, part[1], part[2])
  end
  return ars
end

function naive_split(x, lo)
  local _, hi = factor_range(x)
  local ars, prime, seconds = submit_split(x, lo or 3, hi), true, 0
  for _, ar in ipairs(ars) do
    prime = ar:get() and prime
    seconds = math.max(seconds, ar.elapsed)
  end
  return prime, seconds
end

function less_naive(x)
  local small = views[1]:apply_async("check_prime_in_range", x, 3, 21)
  if not small:get() then return false, small.elapsed end
  local prime, seconds = naive_split(x, 21)
  return prime, small.elapsed + seconds
end

aborted = 0
function early_exit(x)
  local _, hi = factor_range(x)
  local ars = submit_split(x, 3, hi)
  local done, seconds = {}, 0
  local left = #ars
  while left > 0 do
    for j, ar in ipairs(ars) do
      if not done[j] and ar:ready() then
        done[j], left = true, left - 1
        seconds = math.max(seconds, ar.elapsed)
        if not ar:get() then
          -- A factor: stop the others' ranges, and wait until they have stopped (not timed).
          for k, other in ipairs(ars) do
            if not done[k] then other:abort(); aborted = aborted + 1 end
          end
          for k, other in ipairs(ars) do if not done[k] then other:wait() end end
          return false, ar.elapsed
        end
      end
    end
    -- Block briefly on one running range rather than spin.
    for j, ar in ipairs(ars) do if not done[j] then ar:wait(0.001); break end end
  end
  return true, seconds
end

-- The engines share Event(name): a range that finds a factor sets it, the others stop. A
-- range that stopped early found nothing, so the number is prime only if every range
-- found nothing and the event is still clear.
events_used = 0
function shared_event(x)
  local _, hi = factor_range(x)
  events_used = events_used + 1
  local name = "primes:factor-found:" .. events_used
  local ev = Event(name)
  ev:clear()
  local ars = {}
  for j, part in ipairs(split(3, hi, #views)) do
    ars[j] = views[j]:apply_async("check_prime_in_range", x, part[1], part[2], name)
  end
  local prime, seconds = true, 0
  for _, ar in ipairs(ars) do
    prime = ar:get() and prime
    seconds = math.max(seconds, ar.elapsed)
  end
  return prime and not ev:is_set(), seconds
end

methods = {{"serial", serial}, {"naive split", naive_split}, {"less-naive", less_naive}, {"early exit", early_exit}, {"shared event", shared_event}}
print(string.format("%d engines; wall time per method, in seconds", #views))
print(string.format("%-20s %12s %12s %12s %12s %12s   %s", "number", "serial", "naive split", "less-naive", "early exit", "shared event", "verdict"))
verdicts = {}
for k, x in ipairs(numbers) do
  local row, answers = {}, {}
  for m, method in ipairs(methods) do
    local prime, seconds = method[2](x)
    answers[m] = prime
    row[m] = string.format("%12.4f", seconds)
  end
  for m = 2, #answers do assert(answers[m] == answers[1], "methods disagree on " .. x) end
  verdicts[k] = answers[1]
  local verdict = answers[1] and "prime" or ("composite (factor " .. factors[k] .. ")")
  print(string.format("%-20d %s   %s", x, table.concat(row, " "), verdict))
end
print(string.format("early exit aborted %d running ranges", aborted))

-- The verdicts: the first three composite, the last two prime, as Miller-Rabin says too.
for k, x in ipairs(numbers) do
  assert(verdicts[k] == (factors[k] == false), "wrong verdict for " .. x)
  assert(lview:apply_sync("check_prime", x) == verdicts[k], "check_prime disagrees on " .. x)
end
print("verdicts: 3 composite, 2 prime: ok")
