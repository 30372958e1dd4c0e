-- Parley store decision script. One call decides a batch: the decisions one replica made in one
-- event-loop tick, grouped by hash tag. Each decision is atomic on its own (check every limit and
-- lease, then consume all or none); decisions on the same tag see each other in order.
--
-- Layout. Every limit of one tag lives in one hash (a group's key), as packed little-endian doubles:
--   window: field <key> = lo, hi, sum; field <key>#<slot> = bucket, count for each of its span + 1
--           bucket slots (src/limits/window-counter.ts, the same steps); a slot whose bucket is not
--           the one asked about counts 0, so nothing is ever cleared
--   bucket: field <key> = tokens, last          daily: field <key> = day, used
-- plus '_x' (the expiry last set on the hash, ms) and 'r:<client>', 'r:<client>!' (the replay
-- record, below).
-- Leases are sorted sets of holders scored by expiry (their own keys, same tag).
--
-- In: KEYS = the group hashes and lease keys (named by index). ARGV[1] = now ('' = Redis TIME),
--   ARGV[2] = client id, ARGV[3] = seq, ARGV[4] = every number of the batch as packed doubles:
--     groups; per group: hash key index, fields, decisions, whether any decision writes, then per
--     field its bucket ms and slots (0, 0 unless a window);
--     per decision: mode (1 admit, 2 acquire, 3 peek), ttlMs, specs, leases;
--     per spec: kind (1 window, 2 bucket, 3 daily), field index, a, b, cost; per lease: key index, limit
--   ARGV[5...] = the strings in order: per group its field names, then the holder of each decision
--   that has leases.
-- Out: packed doubles: now, then per decision: allowed (1 | 0), retryAfterMs, refused index (1-based
--   over specs then leases, 0 = none), two numbers per spec (window: sum, hi; bucket: tokens, last;
--   daily: used, 0), one per lease (holders). The client derives remaining and reset from them.
--
-- Replays. ioredis resends an unanswered command after a reconnect. The client sends at most one
-- batch per tag at a time, with a rising seq, and each group records 'r:<client>' = seq, and when a
-- decision of it was refused, 'r:<client>!' = "seq|d:retryAfterMs,index/..." (the refused ones, by
-- position in the group). A batch whose seq is not above the record is a replay: nothing is
-- consumed, and each decision answers its recorded outcome with the states as they are now.
--
-- Cost (bench/redis.ts; measured in this Redis: a table 0.3 µs, struct.pack 0.45 µs, a new 500-byte
-- string 1-2.6 µs, a Redis call 1.2-1.9 µs). So the script reads its numbers with one struct.unpack
-- and writes its reply with one struct.pack, formats no number on the common path, makes one HMGET
-- (the window headers, the current bucket slots) and one HSET per group, plus a PEXPIRE when the
-- hash needs a longer life, and calls TIME once per batch. A window reads more slots only when
-- several buckets leave it at once or when it refuses.
local DAY_MS = 86400000
local SLACK = 1e-9
local INF = math.huge
local floor, ceil = math.floor, math.ceil
local pack, unpack_ = struct.pack, struct.unpack
local HMGET = 'HMGET'

local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = t[1] * 1000 + floor(t[2] / 1000)
end
local client = 'r:' .. ARGV[2]
local clientO = client .. '!'
local seq = tonumber(ARGV[3])
local blob = ARGV[4]
local V = { unpack_('<' .. string.rep('d', #blob / 8), blob) }
local today = floor(now / DAY_MS)

-- Windows. w: lo, hi, sum (the header); cur = now's bucket, cc its count, pc the count of bucket
-- cur - n (the same slot); slots[b] = the count of any other bucket once read; tb = the bucket
-- written (false = none).
local function slotField(w, b) return w.name .. '#' .. (b % w.n) end
-- Reads the buckets from..to not known yet, in one call.
local function readSlots(w, from, to)
  local t = w.slots
  if not t then t = {}; w.slots = t end
  local fields, want = {}, {}
  for b = from, to do
    if b ~= w.cur and b ~= w.cur - w.n and not t[b] then
      fields[#fields + 1] = slotField(w, b)
      want[#want + 1] = b
    end
  end
  if #fields == 0 then return end
  local got = redis.call(HMGET, w.hkey, unpack(fields))
  for j = 1, #want do
    local c, x = 0, got[j]
    if x then
      local b, n = unpack_('<dd', x)
      if b == want[j] then c = n end
    end
    t[want[j]] = c
  end
end
local function count(w, b)
  if b == w.cur then return w.cc end
  if b == w.cur - w.n then return w.pc end
  if not (w.slots and w.slots[b]) then readSlots(w, b, b) end
  return w.slots[b]
end
local function wOut(w, b)
  local ms = (b + w.span + 1) * w.g - now
  if ms > 0 then return ms end
  return 0
end
-- ms until `cost` more fit (the caller saw they do not fit now).
local function wUntil(w, cost)
  if not (cost <= w.limit) then return INF end
  readSlots(w, w.lo, w.hi)
  local need = w.sum + cost - w.limit
  local freed = 0
  for b = w.lo, w.hi do
    freed = freed + count(w, b)
    if freed >= need - 1e-9 then return wOut(w, b) end
  end
  return wOut(w, w.hi)
end
local function wLoad(limit, W, raw, name, hkey, g, n, sf, slotRaw)
  local cur = floor(now / g)
  local w = { k = 1, limit = limit, W = W, g = g, span = n - 1, n = n, lo = cur - n + 1, hi = -1, sum = 0,
    cur = cur, cc = 0, pc = 0, name = name, hkey = hkey, sf = sf, slots = false, tb = false, dirty = false }
  if slotRaw then
    local sb, sc = unpack_('<dd', slotRaw)
    if sb == cur then w.cc = sc elseif sb == cur - n then w.pc = sc end
  end
  if raw then
    local lo, hi, sum = unpack_('<ddd', raw)
    w.hi, w.sum = hi, sum
    local nlo = w.lo
    if nlo <= lo then
      w.lo = lo
    elseif nlo - lo >= n or sum <= 0 or hi < nlo then
      -- Everything written has left, or nothing counts: start empty.
      w.sum = 0
    else
      -- Drop the buckets that stopped counting (the usual one, cur - n, came with the HMGET).
      if nlo - lo > 1 then readSlots(w, lo, nlo - 1) end
      for b = lo, nlo - 1 do
        local x = count(w, b)
        if x ~= 0 then w.sum = w.sum - x end
      end
    end
  end
  return w
end

-- Token buckets: a = rate per second, b = burst.
local function tokensAt(s, t)
  local dt = t - s.last
  if not (dt > 0) then return s.tokens end
  local x = s.tokens + (dt * s.a) / 1000
  if x < s.b then return x end
  return s.b
end
local function bUntil(s, cost)
  if not (cost <= s.b) then return INF end
  local slack = s.b * SLACK
  if s.tokens + slack >= cost then return 0 end
  local ms = ceil(s.last - now + ((cost - s.tokens) * 1000) / s.a)
  if ms < 1 then ms = 1 end
  while tokensAt(s, now + ms) + slack < cost do ms = ms + 1 end
  while ms > 1 and tokensAt(s, now + ms - 1) + slack >= cost do ms = ms - 1 end
  return ms
end
local function bLoad(rate, burst, raw)
  local s = { k = 2, a = rate, b = burst, tokens = burst, last = now, dirty = false }
  if raw then
    s.tokens, s.last = unpack_('<dd', raw)
    if now > s.last then
      s.tokens = tokensAt(s, now)
      s.last = now
    end
  end
  return s
end

-- Daily counters: a = limit.
local function dLoad(limit, raw)
  local s = { k = 3, a = limit, used = 0, dirty = false }
  if raw then
    local day, used = unpack_('<dd', raw)
    if day == today then s.used = used end
  end
  return s
end

local R, nR = { now }, 1
local v, S = 2, 5
for _ = 1, V[1] do
  local hkey, nF, nD, hasW = KEYS[V[v]], V[v + 1], V[v + 2], V[v + 3] == 1
  v = v + 4
  -- Read every field, and for a window its current bucket's slot too: raw[pos[i]] (and + 1).
  local fS = S - 1 -- field i is ARGV[fS + i]
  -- pos[i]: where field i is in args (and raw); its bucket ms and slots are V[fv + 2i], V[fv + 2i + 1].
  local args, pos, na, fv = { client, clientO, '_x' }, {}, 3, v - 2
  for i = 1, nF do
    local name, g = ARGV[fS + i], V[v]
    na = na + 1
    args[na] = name
    pos[i] = na
    if g > 0 then
      na = na + 1
      args[na] = name .. '#' .. (floor(now / g) % V[v + 1])
    end
    v = v + 2
  end
  S = S + nF
  local raw = redis.call(HMGET, hkey, unpack(args))
  local replayed = false
  if hasW and raw[1] and tonumber(raw[1]) >= seq then
    replayed = { known = tonumber(raw[1]) == seq }
    local rseq, rest = string.match(raw[2] or '', '^(%d+)|(.*)$')
    if replayed.known and rseq and tonumber(rseq) == seq then
      for d, r, i in string.gmatch(rest, '(%d+):([^,/]+),(%d+)') do replayed[tonumber(d)] = { tonumber(r), tonumber(i) } end
    end
  end
  -- st[i]: field i's state once loaded; refusals: "d:retryAfterMs,index" of the refused decisions.
  local st, refusals = {}, false
  for d = 1, nD do
    local mode, ttl, nS, nL = V[v], V[v + 1], V[v + 2], V[v + 3]
    local s0 = v + 4
    local sEnd = s0 + 5 * (nS - 1)
    v = s0 + 5 * nS + 2 * nL
    local peek = mode == 3 or replayed
    for o = s0, sEnd, 5 do
      local fi = V[o + 1]
      if not st[fi] then
        local kind, p = V[o], pos[fi]
        if kind == 1 then st[fi] = wLoad(V[o + 2], V[o + 3], raw[p], ARGV[fS + fi], hkey, V[fv + 2 * fi], V[fv + 2 * fi + 1], args[p + 1], raw[p + 1])
        elseif kind == 2 then st[fi] = bLoad(V[o + 2], V[o + 3], raw[p])
        else st[fi] = dLoad(V[o + 2], raw[p]) end
      end
    end
    local leases, holder = false, ''
    if nL > 0 then
      holder = ARGV[S]
      S = S + 1
      leases = {}
      local l0 = s0 + 5 * nS
      for i = 1, nL do
        local key = KEYS[V[l0 + 2 * i - 2]]
        local l = { key = key, limit = V[l0 + 2 * i - 1], count = 0, present = false }
        if peek then
          l.count = redis.call('ZCOUNT', key, '(' .. now, '+inf')
        else
          redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
          l.count = redis.call('ZCARD', key) -- every holder left expires after now
          local sc = redis.call('ZSCORE', key, holder)
          l.present = sc and tonumber(sc) > now
        end
        leases[i] = l
      end
    end
    -- Decide.
    local refused, retry = 0, 0
    if not peek then
      if mode == 1 then
        local i = 0
        for o = s0, sEnd, 5 do
          i = i + 1
          local s, cost, wait = st[V[o + 1]], V[o + 4], 0
          local k = s.k
          if k == 1 then
            if s.sum + cost > s.limit then wait = wUntil(s, cost) end
          elseif k == 2 then
            if not (cost <= s.b and s.tokens + s.b * SLACK >= cost) then wait = bUntil(s, cost) end
          elseif s.used + cost > s.a + 1e-9 then
            wait = DAY_MS - now % DAY_MS
          end
          if wait > 0 and (refused == 0 or wait > retry) then refused = i; retry = wait end
        end
        if leases and refused == 0 then
          for i = 1, nL do
            local l = leases[i]
            if not l.present and l.count >= l.limit then refused = nS + i; break end
          end
        end
      else
        for i = 1, nL do
          local l = leases[i]
          if not l.present and l.count >= l.limit then refused = i; break end
        end
        if refused ~= 0 then
          local m = INF
          for i = 1, nL do
            local first = redis.call('ZRANGEBYSCORE', leases[i].key, '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
            local e = 0
            if first[2] then e = tonumber(first[2]) - now end
            if e < m then m = e end
          end
          if m < 1000 then m = 1000 end
          retry = m
        end
      end
      -- Consume.
      if refused == 0 then
        for o = s0, sEnd, 5 do
          local fi, cost = V[o + 1], V[o + 4]
          local s = st[fi]
          local k, changed = s.k, true
          if k == 1 then
            if s.limit ~= 0 and cost > 0 then
              -- The current bucket, unless the clock stepped back behind the newest.
              local b = s.cur
              if b < s.hi then b = s.hi end
              if b < s.lo then b = s.lo end
              if b == s.cur then s.cc = s.cc + cost
              else
                local c = count(s, b) + cost
                if b == s.cur - s.n then s.pc = c else s.slots[b] = c end
              end
              s.tb = b
              s.sum = s.sum + cost
              s.hi = b
            else changed = false end
          elseif k == 2 then
            if cost <= s.b and s.tokens + s.b * SLACK >= cost then
              local left = s.tokens - cost
              if left > 0 then s.tokens = left else s.tokens = 0 end
            else changed = false end
          else
            s.used = s.used + cost
          end
          if changed then s.dirty = true end
        end
        if leases then
          for i = 1, nL do
            local l = leases[i]
            redis.call('ZADD', l.key, now + ttl, holder)
            if not l.present then l.count = l.count + 1; l.present = true end
            local top = redis.call('ZRANGE', l.key, -1, -1, 'WITHSCORES')
            local maxExp = tonumber(top[2]) or (now + ttl)
            redis.call('PEXPIRE', l.key, math.max(1, ceil(maxExp - now)) + 1000)
          end
        end
      end
    end
    -- Reply: the outcome, then the numbers of every limit and lease.
    local ok, r1, r2 = 1, 0, 0
    if replayed then
      -- Recorded refused: its retry and index; not recorded: allowed (or a peek); unknown: refused.
      local rec = replayed[d]
      if rec then ok, r1, r2 = 0, rec[1], rec[2]
      elseif not replayed.known then ok = 0 end
    elseif refused ~= 0 then
      ok, r1, r2 = 0, retry, refused
      local e = d .. ':' .. string.format('%.17g', retry) .. ',' .. refused
      if refusals then refusals = refusals .. '/' .. e else refusals = e end
    end
    R[nR + 1], R[nR + 2], R[nR + 3] = ok, r1, r2
    nR = nR + 3
    for o = s0, sEnd, 5 do
      local s = st[V[o + 1]]
      local k = s.k
      if k == 1 then R[nR + 1], R[nR + 2] = s.sum, s.hi
      elseif k == 2 then R[nR + 1], R[nR + 2] = s.tokens, s.last
      else R[nR + 1], R[nR + 2] = s.used, 0 end
      nR = nR + 2
    end
    if leases then
      for i = 1, nL do
        nR = nR + 1
        R[nR] = leases[i].count
      end
    end
  end
  -- Write back the changed limits and the replay record; give the hash a longer life when needed.
  if hasW and not replayed then
    local w = { client, seq }
    if refusals then w[3], w[4] = clientO, seq .. '|' .. refusals end
    local need = 60000 -- the replay record must outlive a reconnect
    for fi = 1, nF do
      local s = st[fi]
      if s and s.dirty then
        local k, life = s.k, 0
        w[#w + 1] = ARGV[fS + fi]
        if k == 1 then
          w[#w + 1] = pack('<ddd', s.lo, s.hi, s.sum)
          local b = s.tb
          if b == s.cur then
            w[#w + 1] = s.sf
            w[#w + 1] = pack('<dd', b, s.cc)
          else
            w[#w + 1] = slotField(s, b)
            w[#w + 1] = pack('<dd', b, count(s, b))
          end
          life = s.W + s.g + 1000
        elseif k == 2 then
          w[#w + 1] = pack('<dd', s.tokens, s.last)
          life = ceil((s.b * 1000) / s.a) + 1000
        else
          w[#w + 1] = pack('<dd', today, s.used)
          life = 2 * DAY_MS
        end
        if life > need then need = life end
      end
    end
    local x = tonumber(raw[3] or '0')
    local extend = now + need > x
    if extend then
      x = now + 2 * need
      w[#w + 1] = '_x'
      w[#w + 1] = x
    end
    redis.call('HSET', hkey, unpack(w))
    -- Relative, so an injected (test) clock works too.
    if extend then redis.call('PEXPIRE', hkey, 2 * need) end
  end
end
return pack('<' .. string.rep('d', nR), unpack(R, 1, nR))
