-- wrk script for bench/run: cycle through a file of keys, one request per
-- key in turn, "Authorization: Bearer <key>"; print a JSON summary line.
--   wrk ... -s bench/keys.lua http://127.0.0.1:PORT/ -- KEYFILE
local reqs = {}
local n, i = 0, 0

function init(args)
    local path = args[1]
    for line in io.lines(path) do
        if #line > 0 then
            n = n + 1
            reqs[n] = wrk.format("GET", "/", {Authorization = "Bearer " .. line})
        end
    end
    -- each thread starts at a different place in the file
    i = math.random(n) - 1
end

function request()
    i = i % n + 1
    return reqs[i]
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,' ..
        '"write":%d,"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,' ..
        '"max":%d,"mean":%.1f}\n',
        summary.requests, summary.duration, e.connect, e.read, e.write,
        e.status, e.timeout, latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency.max, latency.mean))
end
