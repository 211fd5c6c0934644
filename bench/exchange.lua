-- wrk script: POST one token-exchange form body (read from the file named by BODY_FILE).
local file = assert(io.open(os.getenv("BODY_FILE"), "r"))
wrk.method = "POST"
wrk.body = file:read("*a")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
file:close()

local non200 = 0
response = function(status, headers, body)
    if status ~= 200 then
        non200 = non200 + 1
        if non200 <= 3 then io.stderr:write("status " .. status .. ": " .. body .. "\n") end
    end
end
