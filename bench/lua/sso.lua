-- SSO: a signed-in browser's authorize -> token -> UserInfo; one operation = the three.
-- Environment (set by bench/run.py): BENCH_COOKIE (the signed-in session), BENCH_AUTHORIZE
-- (path + query, fixed PKCE challenge), BENCH_TOKEN_PATH, BENCH_USERINFO_PATH,
-- BENCH_BASIC (client_secret_basic header value), BENCH_REDIRECT_URI, BENCH_VERIFIER.
local bench = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local cookie = os.getenv("BENCH_COOKIE")
local authorize = os.getenv("BENCH_AUTHORIZE")
local token_path = os.getenv("BENCH_TOKEN_PATH")
local userinfo_path = os.getenv("BENCH_USERINFO_PATH")
local basic = os.getenv("BENCH_BASIC")
local redirect_uri = os.getenv("BENCH_REDIRECT_URI")
local verifier = os.getenv("BENCH_VERIFIER")

local step = "authorize"
local code, access_token

setup = bench.setup
done = bench.done

function init(args)
  bench.publish()
end

function delay()
  if step == "authorize" then return bench.pace() end
  return 0
end

function request()
  if step == "authorize" then
    bench.start_op()
    return wrk.format("GET", authorize, { ["Cookie"] = cookie })
  elseif step == "token" then
    local body = "grant_type=authorization_code&code=" .. bench.urlencode(code)
      .. "&redirect_uri=" .. bench.urlencode(redirect_uri)
      .. "&code_verifier=" .. bench.urlencode(verifier)
    return wrk.format("POST", token_path, {
      ["Authorization"] = basic,
      ["Content-Type"] = "application/x-www-form-urlencoded",
    }, body)
  else
    return wrk.format("GET", userinfo_path, { ["Authorization"] = "Bearer " .. access_token })
  end
end

function response(status, headers, body)
  if step == "authorize" then
    local location = bench.header(headers, "Location") or ""
    code = bench.query_param(location, "code")
    if (status == 302 or status == 303) and location:sub(1, #redirect_uri) == redirect_uri
        and code then
      step = "token"
    else
      bench.error("authorize", status, location .. " " .. body)
    end
  elseif step == "token" then
    access_token = status == 200 and bench.json_string(body, "access_token") or nil
    if access_token then
      step = "userinfo"
    else
      bench.error("token", status, body)
      step = "authorize"
    end
  else
    if status == 200 and body:find('"sub"', 1, true) then
      bench.finish_op()
    else
      bench.error("userinfo", status, body)
    end
    step = "authorize"
  end
end
