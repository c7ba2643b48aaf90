-- projkey soak: wrk cycles through static keys (valid, disabled, deleted,
-- unknown); the URI names the key's index and the server echoes it in X-Uri,
-- so each answer is judged against the state of the key it carried.
-- keys file: one "expected-status secret" a line.

local keys, want = {}, {}
local counter = 0
local threads = {}

-- the counters are globals of each thread, read by done() with thread:get
s_requests, s_wrong, s_s5xx, s_accepted, s_rejected = 0, 0, 0, 0, 0

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    local f = assert(io.open(args[1], "r"))
    for line in f:lines() do
        local w, k = line:match("^(%d+) (%S+)$")
        if w then
            table.insert(keys, k)
            table.insert(want, tonumber(w))
        end
    end
    f:close()
    counter = math.random(#keys)
end

function request()
    counter = counter % #keys + 1
    return wrk.format("GET", "/api/k" .. counter, {
        ["Authorization"] = "Bearer " .. keys[counter]
    })
end

function response(status, headers, body)
    s_requests = s_requests + 1
    if status >= 500 then
        s_s5xx = s_s5xx + 1
    end
    if status == 200 then
        s_accepted = s_accepted + 1
    elseif status == 401 then
        s_rejected = s_rejected + 1
    end
    local i = tonumber((headers["X-Uri"] or ""):match("/api/k(%d+)$") or "")
    -- a 5xx is counted as such, not as a decision
    if status < 500 and (not i or want[i] ~= status) then
        s_wrong = s_wrong + 1
    end
end

function done(summary, latency, requests)
    local total = {}
    for _, t in ipairs(threads) do
        for _, name in ipairs({ "requests", "wrong", "s5xx", "accepted",
                                "rejected" }) do
            total[name] = (total[name] or 0) + (t:get("s_" .. name) or 0)
        end
    end
    for name, v in pairs(total) do
        io.write(string.format("PROJKEY %s %d\n", name, v))
    end
end
