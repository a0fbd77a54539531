-- Monte Carlo pi on every engine (High Performance Python's first cluster workload):
-- throw 10^8 random points at the unit square, count those inside the quarter circle.
--
--   cluster start -n 4 --daemon && cluster run examples/pi.lua
--
-- calculate_pi(n) is a native built-in: n points, returns how many fell inside. Without
-- a seed every call on every engine draws its own random stream; with a seed the run is
-- reproducible. (`do assert(...) end` checks an answer without printing its `true`.)

total = 100000000
n = #rc.ids
-- One share per engine; the first takes the remainder.
shares = {}
for k = 1, n do shares[k] = total // n end
shares[1] = shares[1] + total % n

-- A direct map gives each engine one share; the call returns each engine's hits.
ar = dview:map_async("calculate_pi", shares)
hits = ar:get()
seconds = ar.elapsed
inside = 0
for _, h in ipairs(hits) do inside = inside + h end
estimate = 4 * inside / total

print(string.format("%-8s %14s %12s %10s", "engine", "samples", "inside", "pi"))
for k, h in ipairs(hits) do print(string.format("%-8d %14d %12d %10.5f", rc.ids[k], shares[k], h, 4 * h / shares[k])) end
print(string.format("%-8s %14d %12d %10.6f", "all", total, inside, estimate))
print(string.format("error %.6f, %.2f s, %.0f million samples/s on %d engines", math.abs(estimate - math.pi), seconds, total / seconds / 1e6, n))
do assert(math.abs(estimate - math.pi) < 0.001, "the estimate is too far from pi: " .. estimate) end

-- Reproducible: a seed per engine (42 + its position), pushed, used by a shipped function.
dview:scatter("seed", range(42, 42 + n))
function seeded(m) return calculate_pi(m, seed[1]) end
first = dview:map_sync(seeded, range(1000000, 1000000 + n))
again = dview:map_sync(seeded, range(1000000, 1000000 + n))
first
for k = 1, n do assert(first[k] == again[k], "a seeded run did not repeat") end
print("seeded runs repeat: ok")
