-- tests/wrk-status.lua — wrk -s: count the answers that are not 200 by
-- status code and by who answered (tests/backend.py's X-Backend header, or
-- "haproxy" when no backend did), so a test that sees "Non-2xx" can say
-- which ones ("status 503 from haproxy: 287" after wrk's report).
local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

function init(args)
	codes = {}
end

function response(status, headers, body)
	if status ~= 200 then
		local k = status .. " from " .. (headers["X-Backend"] or "haproxy")
		codes[k] = (codes[k] or 0) + 1
	end
end

function done(summary, latency, requests)
	local total = {}
	for _, t in ipairs(threads) do
		local c = t:get("codes")
		for k, v in pairs(c or {}) do
			total[k] = (total[k] or 0) + v
		end
	end
	for k, v in pairs(total) do
		io.write(string.format("status %s: %d\n", k, v))
	end
end
