-- The first 1,000 primes, one load-balanced task each: primes(k) is the k-th prime
-- (2 is the 0th), found by a native sieve on whichever engine the scheduler picks.
--
--   cluster start -n 4 --daemon && cluster run examples/nth_primes.lua

ar = lview:map_async("primes", range(0, 1000))
ps = ar:get()
print(string.format("%d tasks in %.3f s on %d engines", #ps, ar.elapsed, #rc.ids))
first_ten = {}
for k = 1, 10 do first_ten[k] = ps[k] end
first_ten
ps[#ps]

-- Checks: it begins 2, 3, 5, 7; it increases; every entry is prime (Miller-Rabin on the
-- engines); the 1000th prime is 7919.
for k, p in ipairs({2, 3, 5, 7}) do assert(ps[k] == p, "primes(" .. (k - 1) .. ") = " .. ps[k]) end
for k = 2, #ps do assert(ps[k] > ps[k - 1], "not increasing at " .. k) end
for k, ok in ipairs(lview:map_sync("check_prime", ps)) do assert(ok, ps[k] .. " is not prime") end
do assert(#ps == 1000 and ps[1000] == 7919, "the 1000th prime is 7919") end
-- No prime is missing: every number below 7919 that is not listed is composite.
listed = {}
for _, p in ipairs(ps) do listed[p] = true end
others = {}
for x = 2, 7919 do if not listed[x] then table.insert(others, x) end end
for k, ok in ipairs(dview:map_sync("check_prime", others)) do assert(not ok, others[k] .. " is prime but missing") end
print("begins 2, 3, 5, 7; 1,000 primes, none missing, the last 7919: ok")
