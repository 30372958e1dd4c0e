-- Parley store decision script: check every limit and lease, then consume all or none.
-- KEYS[1] = op key (idempotency), then one key per spec, then one key per lease.
-- ARGV: mode ('admit' | 'acquire' | 'peek'), now ('' = Redis TIME), opId, holderId, ttlMs,
--       nSpecs, nLeases, then 5 per spec (kind, name, a, b, cost), then 2 per lease (name, limit).
-- Reply: JSON {"allowed":bool,"states":[{name,limit,remaining,resetMs}...],"retryAfterMs","limitName"},
-- where an infinite number is the string "inf" (parsed by RedisStore's parseDecision).
--
-- Cost matters here (every request decision runs it; bench/redis.ts measures it), hence:
-- numbers go to redis.call as Lua numbers (Redis formats them with %.17g, exactly like
-- string.format would, but in C); few closures and no table growth (Lua allocation and GC show up
-- per call); a window reads its size and single entries by rank, never the
-- whole log (O(log n) per decision however full the window is); the reply is built as a string
-- rather than through a table and cjson.
local DAY_MS = 86400000
local SLACK = 1e-9
local OP_MS = 120000
local INF = math.huge

local mode = ARGV[1]
local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

if mode == 'admit' then
  local seen = redis.call('GET', KEYS[1])
  if seen then return seen end
end

local opId = ARGV[3]
local holderId = ARGV[4]
local ttlMs = tonumber(ARGV[5])
local nSpecs = tonumber(ARGV[6])
local nLeases = tonumber(ARGV[7])
local peek = mode == 'peek'
local ceil, floor = math.ceil, math.floor

-- %.17g keeps every bit of a double; used only where a number becomes part of a string.
local function fmt(x) return string.format('%.17g', x) end

local function msUntilOut(t, windowMs)
  local e = t + windowMs
  local ms = ceil(e - now)
  if now + ms < e then ms = ms + 1 end
  if ms > 0 then return ms end
  return 0
end

-- Token bucket helpers (s.a = rate per second, s.b = burst).
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
  if not (cost <= s.b) then return INF end
  local slack = s.b * SLACK
  if s.tokens + slack >= cost then return 0 end
  local behind = s.last - now
  local ms = ceil(behind + ((cost - s.tokens) * 1000) / s.a)
  if ms < 1 then ms = 1 end
  while tokensAt(s, now + ms) + slack < cost do ms = ms + 1 end
  while ms > 1 and tokensAt(s, now + ms - 1) + slack >= cost do ms = ms - 1 end
  return ms
end

-- Load -----------------------------------------------------------------------------------------
local specs = {}
for i = 1, nSpecs do
  local b = 7 + (i - 1) * 5
  -- Every field named up front: adding one later would grow (rehash) the table.
  local s = {
    kind = ARGV[b + 1], name = ARGV[b + 2], a = tonumber(ARGV[b + 3]), b = tonumber(ARGV[b + 4]), cost = tonumber(ARGV[b + 5]), key = KEYS[1 + i],
    size = 0, newest = 0, tokens = 0, last = 0, used = 0, dkey = false, existed = false,
  }
  specs[i] = s
  local key = s.key
  if s.kind == 'window' then
    -- s.a = limit, s.b = windowMs. Entries are scored by time; only count and newest are loaded.
    local from = now - s.b
    if peek then
      s.size = redis.call('ZCOUNT', key, '(' .. fmt(from), '+inf')
    else
      redis.call('ZREMRANGEBYSCORE', key, '-inf', from)
      s.size = redis.call('ZCARD', key)
    end
    if s.size > 0 then
      s.newest = tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2])
    end
  elseif s.kind == 'bucket' then
    local v = redis.call('HMGET', key, 'tokens', 'last')
    if v[1] and v[2] then
      s.tokens = tonumber(v[1]); s.last = tonumber(v[2])
    else
      s.tokens = s.b; s.last = now
    end
  else
    s.dkey = key .. ':' .. floor(now / DAY_MS)
    local raw = redis.call('GET', s.dkey)
    s.existed = raw ~= false
    s.used = tonumber(raw or '0')
  end
end
local leases = {}
for i = 1, nLeases do
  local b = 7 + nSpecs * 5 + (i - 1) * 2
  local l = { name = ARGV[b + 1], limit = tonumber(ARGV[b + 2]), key = KEYS[1 + nSpecs + i], count = 0, present = false }
  leases[i] = l
  if peek then
    l.count = redis.call('ZCOUNT', l.key, '(' .. fmt(now), '+inf')
  else
    redis.call('ZREMRANGEBYSCORE', l.key, '-inf', now)
    l.count = redis.call('ZCARD', l.key) -- every holder left expires after now
  end
  local sc = redis.call('ZSCORE', l.key, holderId)
  l.present = sc and tonumber(sc) > now
end

-- Decide ---------------------------------------------------------------------------------------
local refused, retry = nil, 0
if mode == 'admit' then
  for _, s in ipairs(specs) do
    local wait = 0
    if s.kind == 'window' then
      local limit, size, off = s.a, s.size, 0
      -- Only the newest `limit` entries count.
      if size > limit then off = size - limit; size = limit end
      if size + s.cost > limit then
        if not (s.cost <= limit) then
          wait = INF
        else
          local rank = off + (size + s.cost - limit) - 1
          wait = msUntilOut(tonumber(redis.call('ZRANGE', s.key, rank, rank, 'WITHSCORES')[2]), s.b)
        end
      end
    elseif s.kind == 'bucket' then
      wait = bMsUntil(s, s.cost)
    elseif s.used + s.cost > s.a + 1e-9 then
      wait = DAY_MS - (now % DAY_MS)
    end
    if wait > 0 and (refused == nil or wait > retry) then refused = s.name; retry = wait end
  end
  for _, l in ipairs(leases) do
    if not l.present and l.count >= l.limit and refused == nil then refused = l.name; retry = 0 end
  end
elseif mode == 'acquire' then
  for _, l in ipairs(leases) do
    if not l.present and l.count >= l.limit and refused == nil then refused = l.name end
  end
  if refused ~= nil then
    local m = INF
    for _, l in ipairs(leases) do
      local first = redis.call('ZRANGEBYSCORE', l.key, '(' .. fmt(now), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
      local e = 0
      if first[2] then e = tonumber(first[2]) - now end
      if e < m then m = e end
    end
    if m < 1000 then m = 1000 end
    retry = m
  end
end

-- Consume --------------------------------------------------------------------------------------
if refused == nil and not peek then
  for _, s in ipairs(specs) do
    local key = s.key
    if s.kind == 'window' then
      local limit = s.a
      if limit ~= 0 and s.cost > 0 then
        local t = now
        if s.size > 0 and s.newest > t then t = s.newest end
        local n = s.cost
        if n > limit then n = limit end
        local args, added = { key }, 0
        local suffix = ':' .. now
        for j = 1, n do
          args[#args + 1] = t
          args[#args + 1] = opId .. ':' .. j .. suffix
          added = added + 1
        end
        if added > 0 then
          redis.call('ZADD', unpack(args))
          s.newest = t
        end
        if s.size + added > limit then redis.call('ZREMRANGEBYRANK', key, 0, -(limit + 1)) end
        s.size = s.size + added
        redis.call('PEXPIRE', key, ceil(s.b) + 1000)
      end
    elseif s.kind == 'bucket' then
      refill(s)
      local cost = s.cost
      if cost <= s.b and s.tokens + s.b * SLACK >= cost then
        local left = s.tokens - cost
        if left > 0 then s.tokens = left else s.tokens = 0 end
        redis.call('HSET', key, 'tokens', s.tokens, 'last', s.last)
        redis.call('PEXPIRE', key, ceil((s.b * 1000) / s.a) + 1000)
      end
    else
      s.used = tonumber(redis.call('INCRBYFLOAT', s.dkey, s.cost))
      -- A day key is written for one day; the TTL from its first write outlives that day.
      if not s.existed then redis.call('EXPIRE', s.dkey, 172800) end
    end
  end
  for _, l in ipairs(leases) do
    redis.call('ZADD', l.key, now + ttlMs, holderId)
    if not l.present then l.count = l.count + 1; l.present = true end
    local top = redis.call('ZRANGE', l.key, -1, -1, 'WITHSCORES')
    local maxExp = tonumber(top[2]) or (now + ttlMs)
    redis.call('PEXPIRE', l.key, math.max(1, ceil(maxExp - now)) + 1000)
  end
end

-- Reply ----------------------------------------------------------------------------------------
-- Concatenating a number writes it as cjson does (%.14g); infinity is the string "inf".
local function str(x)
  if string.find(x, '[%c"\\]') then
    x = string.gsub(x, '[%c"\\]', function(c)
      if c == '"' or c == '\\' then return '\\' .. c end
      return string.format('\\u%04x', string.byte(c))
    end)
  end
  return '"' .. x .. '"'
end

local parts = {}
for i, s in ipairs(specs) do
  local limit, remaining, reset
  if s.kind == 'window' then
    local size = s.size
    if size > s.a then size = s.a end
    reset = 0
    if size > 0 then reset = msUntilOut(s.newest, s.b) end
    limit, remaining = s.a, s.a - size
  elseif s.kind == 'bucket' then
    refill(s)
    limit, remaining, reset = s.b, floor(s.tokens), bMsUntil(s, s.b)
  else
    remaining = s.a - s.used
    if remaining < 0 then remaining = 0 end
    limit, reset = s.a, DAY_MS - (now % DAY_MS)
  end
  if limit == INF then limit = '"inf"' end
  if remaining == INF then remaining = '"inf"' end
  if reset == INF then reset = '"inf"' end
  parts[i] = '{"name":' .. str(s.name) .. ',"limit":' .. limit .. ',"remaining":' .. remaining .. ',"resetMs":' .. reset .. '}'
end
for _, l in ipairs(leases) do
  local r = l.limit - l.count
  if r < 0 then r = 0 end
  parts[#parts + 1] = '{"name":' .. str(l.name) .. ',"limit":' .. l.limit .. ',"remaining":' .. r .. ',"resetMs":0}'
end

local json
if refused == nil then
  json = '{"allowed":true,"states":[' .. table.concat(parts, ',') .. ']}'
else
  if retry == INF then retry = '"inf"' end
  json = '{"allowed":false,"retryAfterMs":' .. retry .. ',"limitName":' .. str(refused) .. ',"states":[' .. table.concat(parts, ',') .. ']}'
end
if mode == 'admit' then redis.call('SET', KEYS[1], json, 'PX', OP_MS) end
return json
