-- Password sign-in: GET /login (a fresh browser: session cookie + CSRF token) -> POST the
-- credentials -> 303. One operation = the two requests. Each connection cycles through its
-- own slice of the accounts (connection i takes lines i, i+N, ...), so no account is ever
-- signed in to twice at the same moment.
-- Environment: BENCH_ACCOUNTS_FILE (one login id per line), BENCH_SCHOOL, BENCH_PASSWORD
-- (BENCH_CONNECTIONS comes from bench/harness.py).
local bench = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local school = os.getenv("BENCH_SCHOOL")
local password = os.getenv("BENCH_PASSWORD")
local accounts = {}
local next_account = 1
local step = "page"
local cookie, csrf

setup = bench.setup -- sets bench_slot, this connection's number

done = bench.done

function init(args)
  bench.publish()
  local n, every = 0, tonumber(os.getenv("BENCH_CONNECTIONS"))
  for line in io.lines(os.getenv("BENCH_ACCOUNTS_FILE")) do
    if n % every == bench_slot - 1 then accounts[#accounts + 1] = line end
    n = n + 1
  end
  assert(#accounts > 0, "fewer accounts than connections")
end

function delay()
  if step == "page" then return bench.pace() end
  return 0
end

function request()
  if step == "page" then
    bench.start_op()
    return wrk.format("GET", "/login")
  end
  local login = accounts[next_account]
  next_account = next_account % #accounts + 1
  local body = "csrf_token=" .. bench.urlencode(csrf) .. "&school=" .. bench.urlencode(school)
    .. "&login_id=" .. bench.urlencode(login) .. "&password=" .. bench.urlencode(password)
    .. "&txn=&card="
  return wrk.format("POST", "/login", {
    ["Cookie"] = cookie,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, body)
end

function response(status, headers, body)
  if step == "page" then
    local set_cookie = bench.header(headers, "Set-Cookie") or ""
    cookie = set_cookie:match("^([^;]+)")
    csrf = body:match('name="csrf_token" type="hidden" value="([^"]+)"')
      or body:match('name="csrf_token" value="([^"]+)"')
    if status == 200 and cookie and csrf then
      step = "post"
    else
      bench.error("login-page", status, set_cookie)
    end
    return
  end
  step = "page"
  local location = bench.header(headers, "Location") or ""
  if status == 303 and not location:find("/login", 1, true) then
    bench.finish_op()
  else
    bench.error("login-post", status, location .. " " .. body:sub(1, 200))
  end
end
