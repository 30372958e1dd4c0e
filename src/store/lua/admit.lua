-- Parley store decision script: check every limit and lease, then consume all or none.
-- KEYS[1] = op key (idempotency), then one key per spec, then one key per lease.
-- ARGV: mode ('admit' | 'acquire' | 'peek'), now ('' = Redis TIME), opId, holderId, ttlMs,
--       nSpecs, nLeases, then 5 per spec (kind, name, a, b, cost), then 2 per lease (name, limit).
local DAY_MS = 86400000
local SLACK = 1e-9
local OP_MS = 120000

local mode = ARGV[1]
local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local opId = ARGV[3]
local holderId = ARGV[4]
local ttlMs = tonumber(ARGV[5])
local nSpecs = tonumber(ARGV[6])
local nLeases = tonumber(ARGV[7])

if mode == 'admit' then
  local seen = redis.call('GET', KEYS[1])
  if seen then return seen end
end

local function fmt(x) return string.format('%.17g', x) end
local function num(x)
  if x == math.huge then return 'inf' end
  return x
end

local specs = {}
for i = 1, nSpecs do
  local b = 7 + (i - 1) * 5
  local s = { kind = ARGV[b + 1], name = ARGV[b + 2], a = tonumber(ARGV[b + 3]), b = tonumber(ARGV[b + 4]), cost = tonumber(ARGV[b + 5]), key = KEYS[1 + i] }
  specs[i] = s
end
local leases = {}
for i = 1, nLeases do
  local b = 7 + nSpecs * 5 + (i - 1) * 2
  leases[i] = { name = ARGV[b + 1], limit = tonumber(ARGV[b + 2]), key = KEYS[1 + nSpecs + i] }
end

-- Window ---------------------------------------------------------------------------------------
local function winLoad(s)
  if mode ~= 'peek' then
    redis.call('ZREMRANGEBYSCORE', s.key, '-inf', fmt(now - s.b))
    local raw = redis.call('ZRANGE', s.key, 0, -1, 'WITHSCORES')
    local ts = {}
    for j = 2, #raw, 2 do ts[#ts + 1] = tonumber(raw[j]) end
    return ts
  end
  local raw = redis.call('ZRANGEBYSCORE', s.key, '(' .. fmt(now - s.b), '+inf', 'WITHSCORES')
  local ts = {}
  for j = 2, #raw, 2 do ts[#ts + 1] = tonumber(raw[j]) end
  return ts
end
local function msUntilOut(t, windowMs)
  local e = t + windowMs
  local ms = math.ceil(e - now)
  if now + ms < e then ms = ms + 1 end
  if ms > 0 then return ms end
  return 0
end
local function winMsUntil(s)
  local ts = s.ts
  local limit = s.a
  local size = #ts
  if size > limit then
    -- only the newest `limit` count
    local off = size - limit
    local t2 = {}
    for j = off + 1, size do t2[#t2 + 1] = ts[j] end
    ts = t2; s.ts = t2; size = limit
  end
  if size + s.cost <= limit then return 0 end
  if not (s.cost <= limit) then return math.huge end
  local excess = size + s.cost - limit
  return msUntilOut(ts[excess], s.b)
end
local function winTake(s)
  local limit = s.a
  if limit == 0 or not (s.cost > 0) then return end
  local t = now
  local size = #s.ts
  if size > 0 and s.ts[size] > t then t = s.ts[size] end
  local n = s.cost
  if n > limit then n = limit end
  for j = 1, n do
    redis.call('ZADD', s.key, fmt(t), opId .. ':' .. j .. ':' .. fmt(now))
    s.ts[#s.ts + 1] = t
  end
  redis.call('ZREMRANGEBYRANK', s.key, 0, -(limit + 1))
  while #s.ts > limit do table.remove(s.ts, 1) end
  redis.call('PEXPIRE', s.key, math.ceil(s.b) + 1000)
end
local function winState(s)
  local size = #s.ts
  if size > s.a then size = s.a end
  local reset = 0
  if size > 0 then reset = msUntilOut(s.ts[#s.ts], s.b) end
  return { name = s.name, limit = s.a, remaining = s.a - size, resetMs = reset }
end

-- Bucket ---------------------------------------------------------------------------------------
local function bLoad(s)
  local v = redis.call('HMGET', s.key, 'tokens', 'last')
  if v[1] and v[2] then
    s.tokens = tonumber(v[1]); s.last = tonumber(v[2])
  else
    s.tokens = s.b; s.last = now
  end
end
local function tokensAt(s, t)
  local dt = t - s.last
  if not (dt > 0) then return s.tokens end
  local v = s.tokens + (dt * s.a) / 1000
  if v < s.b then return v end
  return s.b
end
local function refill(s)
  if now > s.last then
    s.tokens = tokensAt(s, now)
    s.last = now
  end
end
local function bMsUntil(s, cost)
  refill(s)
  if not (cost <= s.b) then return math.huge end
  local slack = s.b * SLACK
  if s.tokens + slack >= cost then return 0 end
  local behind = s.last - now
  local ms = math.ceil(behind + ((cost - s.tokens) * 1000) / s.a)
  if ms < 1 then ms = 1 end
  while tokensAt(s, now + ms) + slack < cost do ms = ms + 1 end
  while ms > 1 and tokensAt(s, now + ms - 1) + slack >= cost do ms = ms - 1 end
  return ms
end
local function bTake(s)
  refill(s)
  local cost = s.cost
  if not (cost <= s.b) or not (s.tokens + s.b * SLACK >= cost) then return end
  local left = s.tokens - cost
  if left > 0 then s.tokens = left else s.tokens = 0 end
  redis.call('HSET', s.key, 'tokens', fmt(s.tokens), 'last', fmt(s.last))
  redis.call('PEXPIRE', s.key, math.ceil((s.b * 1000) / s.a) + 1000)
end
local function bState(s)
  refill(s)
  return { name = s.name, limit = s.b, remaining = math.floor(s.tokens), resetMs = bMsUntil(s, s.b) }
end

-- Daily ----------------------------------------------------------------------------------------
local function dLoad(s)
  local day = math.floor(now / DAY_MS)
  s.dkey = s.key .. ':' .. day
  s.used = tonumber(redis.call('GET', s.dkey) or '0')
end
local function untilMidnight() return DAY_MS - (now % DAY_MS) end
local function dMsUntil(s)
  if s.used + s.cost > s.a + 1e-9 then return untilMidnight() end
  return 0
end
local function dTake(s)
  s.used = tonumber(redis.call('INCRBYFLOAT', s.dkey, fmt(s.cost)))
  redis.call('EXPIRE', s.dkey, 172800)
end
local function dState(s)
  local r = s.a - s.used
  if r < 0 then r = 0 end
  return { name = s.name, limit = s.a, remaining = r, resetMs = untilMidnight() }
end

-- Leases ---------------------------------------------------------------------------------------
local function lLoad(l)
  if mode ~= 'peek' then redis.call('ZREMRANGEBYSCORE', l.key, '-inf', fmt(now)) end
  l.count = redis.call('ZCOUNT', l.key, '(' .. fmt(now), '+inf')
  local sc = redis.call('ZSCORE', l.key, holderId)
  l.present = sc and tonumber(sc) > now
end
local function lTake(l)
  redis.call('ZADD', l.key, fmt(now + ttlMs), holderId)
  if not l.present then l.count = l.count + 1; l.present = true end
  local top = redis.call('ZRANGE', l.key, -1, -1, 'WITHSCORES')
  local maxExp = tonumber(top[2] or fmt(now + ttlMs))
  redis.call('PEXPIRE', l.key, math.max(1, math.ceil(maxExp - now)) + 1000)
end
local function lState(l)
  local r = l.limit - l.count
  if r < 0 then r = 0 end
  return { name = l.name, limit = l.limit, remaining = r, resetMs = 0 }
end
local function lFirstExpiry(l)
  local first = redis.call('ZRANGEBYSCORE', l.key, '(' .. fmt(now), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if first[2] then return tonumber(first[2]) - now end
  return 0
end

-- Decide ---------------------------------------------------------------------------------------
for _, s in ipairs(specs) do
  if s.kind == 'window' then s.ts = winLoad(s)
  elseif s.kind == 'bucket' then bLoad(s)
  else dLoad(s) end
end
for _, l in ipairs(leases) do lLoad(l) end

local refusal = nil
if mode == 'admit' then
  for _, s in ipairs(specs) do
    local wait
    if s.kind == 'window' then wait = winMsUntil(s)
    elseif s.kind == 'bucket' then wait = bMsUntil(s, s.cost)
    else wait = dMsUntil(s) end
    if wait > 0 and (refusal == nil or wait > refusal.retry) then refusal = { retry = wait, name = s.name } end
  end
  for _, l in ipairs(leases) do
    if not l.present and l.count >= l.limit and refusal == nil then refusal = { retry = 0, name = l.name } end
  end
elseif mode == 'acquire' then
  for _, l in ipairs(leases) do
    if not l.present and l.count >= l.limit and refusal == nil then refusal = { retry = 0, name = l.name } end
  end
  if refusal ~= nil then
    local m = math.huge
    for _, l in ipairs(leases) do
      local e = lFirstExpiry(l)
      if e < m then m = e end
    end
    if m < 1000 then m = 1000 end
    refusal.retry = m
  end
end

if refusal == nil and mode ~= 'peek' then
  for _, s in ipairs(specs) do
    if s.kind == 'window' then winTake(s)
    elseif s.kind == 'bucket' then bTake(s)
    else dTake(s) end
  end
  for _, l in ipairs(leases) do lTake(l) end
end

local states = {}
for _, s in ipairs(specs) do
  local st
  if s.kind == 'window' then st = winState(s)
  elseif s.kind == 'bucket' then st = bState(s)
  else st = dState(s) end
  st.remaining = num(st.remaining); st.resetMs = num(st.resetMs); st.limit = num(st.limit)
  states[#states + 1] = st
end
for _, l in ipairs(leases) do states[#states + 1] = lState(l) end

local out = { allowed = (refusal == nil), states = states, n = #states }
if refusal ~= nil then
  out.retryAfterMs = num(refusal.retry)
  out.limitName = refusal.name
end
local json = cjson.encode(out)
if mode == 'admit' then redis.call('SET', KEYS[1], json, 'PX', OP_MS) end
return json
