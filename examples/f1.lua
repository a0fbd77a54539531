-- Four load-balanced calls of f1(1, x, y), which sleeps one second and returns x + y + 3:
-- on four engines they run side by side, so all four answers arrive after about 1 s,
-- not 4 s. (The concurrent.futures article's first example.)
--
--   cluster start -n 4 --daemon && cluster run examples/f1.lua

ars = {}
for k = 1, 4 do ars[k] = lview:apply_async("f1", 1, k, 10 * k) end
answers, seconds = {}, 0
for k, ar in ipairs(ars) do answers[k] = ar:get(); seconds = math.max(seconds, ar.elapsed) end
answers
for k = 1, 4 do assert(answers[k] == k + 10 * k + 3, "f1(1, " .. k .. ", " .. 10 * k .. ") = " .. answers[k]) end
engines = {}
for _, ar in ipairs(ars) do engines[#engines + 1] = ar.engine_ids[1] end
print(string.format("4 calls of f1(1, x, y) on engines %s: %.2f s in all", table.concat(engines, ", "), seconds))
-- Side by side: well under the 4 s the calls would take one after another.
do assert(seconds < 3.5, string.format("took %.2f s: the calls did not run in parallel", seconds)) end
print("about 1 s: ok")
