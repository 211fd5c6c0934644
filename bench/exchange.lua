-- wrk script: POST form bodies read from the file named by BODY_FILE, one per line, in turn.
local bodies = {}
for line in io.lines(os.getenv("BODY_FILE")) do
    if #line > 0 then bodies[#bodies + 1] = line end
end
assert(#bodies > 0, "no body in BODY_FILE")
wrk.method = "POST"
wrk.body = bodies[1]
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

local next_body = 0
request = function()
    if #bodies == 1 then return wrk.request() end
    next_body = next_body % #bodies + 1
    return wrk.format(nil, nil, nil, bodies[next_body])
end

local non200 = 0
response = function(status, headers, body)
    if status ~= 200 then
        non200 = non200 + 1
        if non200 <= 3 then io.stderr:write("status " .. status .. ": " .. body .. "\n") end
    end
end
