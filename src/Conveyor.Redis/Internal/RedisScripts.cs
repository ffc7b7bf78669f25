namespace Conveyor.Redis.Internal;

/// <summary>
/// The Lua scripts: every step that must not be split by a crash or by another client is one script, which Redis
/// runs atomically. They run through <c>IDatabase.ScriptEvaluateAsync(string, …)</c>, which sends <c>EVALSHA</c>
/// and falls back to <c>EVAL</c> after a server restart emptied the script cache.
/// </summary>
/// <remarks>
/// On Redis Cluster (<see cref="RedisKeys.Cluster"/>) every script that runs declares in <c>KEYS</c> the keys it
/// touches, all in one slot: a queue's (<c>{queue}</c>), a group's (<c>{group}</c>), a task state's, a lock's, or the
/// dead letters' (<c>{dead_letters}</c>). The keys built inside a script there are a queue's priority-level lists
/// (<c>conveyor:{q}:p9</c>) and, for <see cref="Statistics"/>, its consumers' in-flight lists: their names are only
/// known inside the script (from the levels set, the registry), and they are in the queue's slot by construction. The scripts that reach across queues or read member states (machinery's global
/// <c>delayed_tasks</c> routed by <c>RoutingKey</c>, <see cref="RequeueDeadLetters"/>, <see cref="Enqueue"/>,
/// <see cref="Settle"/>, <see cref="SetStates"/>, <see cref="SetPending"/>, the chord counter's cursor) run on a
/// single Redis or behind Sentinel only; on a cluster their work is split by slot (RedisResultBackend.Cluster.cs,
/// RedisClusterDeadLetters.cs).
/// </remarks>
internal static class RedisScripts
{
    /// <summary>
    /// The wake-up protocol. An idle consumer's fetch sets <c>conveyor:{q}:idle</c> in the same script that found
    /// the queue empty; whoever pushes to the queue deletes the flag in the same script as the push, and publishes
    /// on <c>conveyor:{q}:wake</c> only if there was one. So no wake-up is lost (both sides are atomic) and a busy
    /// queue costs no PUBLISH at all.
    /// </summary>
    private const string WakeFunction = """
        local function conveyor_wake(idle)
          if redis.call('DEL', idle) == 1 then redis.call('PUBLISH', string.sub(idle, 1, -5) .. 'wake', '1') end
        end

        """;

    /// <summary>
    /// Result notifications cost nothing when nobody waits: a waiter registers its state channel in
    /// <c>conveyor:watched</c> before it subscribes, and a state write publishes only to a registered channel. A
    /// script reads the registrations once (ZCARD, and the members while they are few) and checks each state in Lua.
    /// </summary>
    private const string NotifyFunction = """
        local function conveyor_watched(key)
          local n = redis.call('ZCARD', key)
          if n == 0 then return nil end
          if n > 64 then return false end
          local t = {}
          for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do t[m] = true end
          return t
        end
        local function conveyor_notify(w, key, channel, name)
          if w == nil or channel == '' then return end
          if w == false then
            if redis.call('ZSCORE', key, channel) then redis.call('PUBLISH', channel, name) end
          elseif w[channel] then
            redis.call('PUBLISH', channel, name)
          end
        end
        local function conveyor_created(old, created)
          if old then
            local c
            local i = string.find(old, '"CreatedAt":"', 1, true)
            if i then
              local j = string.find(old, '"', i + 13, true)
              if j then c = string.sub(old, i + 13, j - 1) end
            else
              c = string.match(old, '"CreatedAt"%s*:%s*"([^"]*)"')
            end
            if c and c ~= '' and string.sub(c, 1, 5) ~= '0001-' then return c end
          end
          return created
        end

        """;

    /// <summary>
    /// RPUSH the message (machinery's producer command) to the queue or to its priority list, note the queue, wake
    /// idle consumers. KEYS: target list, priority levels, idle flag, queues set (left out on a cluster, where it is
    /// in another slot). ARGV: body, queue name, level.
    /// </summary>
    public const string Publish = WakeFunction + """
        redis.call('RPUSH', KEYS[1], ARGV[1])
        if ARGV[3] ~= '0' then redis.call('ZADD', KEYS[2], ARGV[3], ARGV[3]) end
        if KEYS[4] then redis.call('SADD', KEYS[4], ARGV[2]) end
        conveyor_wake(KEYS[3])
        return 1
        """;

    /// <summary>
    /// Moves up to ARGV[1] messages, highest priority level first then the plain queue, to the consumer's in-flight
    /// list. Refuses (returns -1) while the consumer's
    /// heartbeat is missing: a consumer that was declared dead heartbeats again before it takes more work, so no
    /// in-flight list ever fills without a live heartbeat and a registry entry. Levels are numbers. When it found fewer than
    /// asked (the queue is empty now) it sets the idle flag (see <see cref="WakeFunction"/>), so the consumer waits for
    /// the next push rather than asking again to learn that the queue is empty. Each message's deaths is how many
    /// consumers died holding it (see <see cref="Recover"/>), read only while the death counts are not
    /// empty, so a fleet where nobody died pays one EXISTS per batch.
    /// Each list is taken with one LMPOP of up to the count still wanted and one RPUSH of what it gave (Redis 7.0 and
    /// later, ARGV[4] = '1'), or with an LMOVE per message; either keeps the messages' order. With ARGV[5] = '1' (not
    /// on a cluster, where the states are in other slots) it also reads each message's task id (machinery's JSON
    /// begins with <c>{"UUID":"</c>) and the CreatedAt of its stored state (PENDING, written before the push), so the
    /// worker's settle can store every state of the task whole, without reading it again or joining strings in Lua;
    /// '' when either is missing. Returns (level, body, deaths, task id, CreatedAt) per message.
    /// KEYS: priority levels, queue, in-flight list, heartbeat, idle flag, death counts. ARGV: max, idle flag PX,
    /// priority list prefix, LMPOP available ('1'), read CreatedAt ('1'), state key prefix.
    /// </summary>
    public const string Fetch = NotifyFunction + """
        if redis.call('EXISTS', KEYS[4]) == 0 then return -1 end
        local max = tonumber(ARGV[1])
        local out = {}
        local n = 0
        local function add(level, v)
          n = n + 1
          out[#out + 1] = level
          out[#out + 1] = v
          out[#out + 1] = 0
          local id, created = '', ''
          if ARGV[5] == '1' then
            local i = string.find(v, '"UUID":"', 1, true)
            if i and i < 8 then
              local j = string.find(v, '"', i + 8, true)
              if j then
                id = string.sub(v, i + 8, j - 1)
                created = conveyor_created(redis.call('GET', ARGV[6] .. id), '')
              end
            end
          end
          out[#out + 1] = id
          out[#out + 1] = created
        end
        local function take(key, level)
          if ARGV[4] == '1' then
            local want = max - n
            local got = redis.call('LMPOP', 1, key, 'LEFT', 'COUNT', want)
            if not got then return true end
            local items = got[2]
            for i = 1, #items, 1000 do
              redis.call('RPUSH', KEYS[3], unpack(items, i, math.min(i + 999, #items)))
            end
            for _, v in ipairs(items) do add(level, v) end
            return #items < want
          end
          while n < max do
            local v = redis.call('LMOVE', key, KEYS[3], 'LEFT', 'RIGHT')
            if not v then return true end
            add(level, v)
          end
          return false
        end
        local levels = redis.call('ZREVRANGE', KEYS[1], 0, -1)
        for _, level in ipairs(levels) do
          if n >= max then break end
          if take(ARGV[3] .. level, tonumber(level)) then redis.call('ZREM', KEYS[1], level) end
        end
        if n < max then take(KEYS[2], 0) end
        if n < max then
          redis.call('SET', KEYS[5], '1', 'PX', ARGV[2])
        end
        if n > 0 and redis.call('EXISTS', KEYS[6]) == 1 then
          for i = 2, #out, 5 do
            out[i + 1] = tonumber(redis.call('HGET', KEYS[6], redis.sha1hex(out[i])) or '0')
          end
        end
        return out
        """;

    /// <summary>
    /// Hands one message back to the head of the list it came from, if the consumer still holds it (a consumer that
    /// was declared dead no longer does, and must not duplicate it).
    /// KEYS: in-flight list, target list, priority levels, idle flag. ARGV: body, level.
    /// </summary>
    public const string Release = WakeFunction + """
        if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
        redis.call('LPUSH', KEYS[2], ARGV[1])
        if ARGV[2] ~= '0' then redis.call('ZADD', KEYS[3], ARGV[2], ARGV[2]) end
        conveyor_wake(KEYS[4])
        return 1
        """;

    /// <summary>
    /// Removes the message from the in-flight list and stores it as a dead letter (a hash with the raw bytes) in
    /// the same step, forgetting its death count. KEYS: in-flight list, dead-letter list, counts per queue, id
    /// sequence, death counts. ARGV: body, queue, reason, time (Unix ms), entry key prefix.
    /// </summary>
    public const string DeadLetter = """
        if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
        redis.call('HDEL', KEYS[5], redis.sha1hex(ARGV[1]))
        local id = redis.call('INCR', KEYS[4])
        redis.call('HSET', ARGV[5] .. id, 'queue', ARGV[2], 'reason', ARGV[3], 'at', ARGV[4], 'body', ARGV[1])
        redis.call('RPUSH', KEYS[2], id)
        redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
        return id
        """;

    /// <summary>
    /// A dead letter's entry on a cluster, where it is in another slot than the in-flight list: the id comes from
    /// an INCR before, and the message leaves its in-flight list after (<see cref="Acknowledge"/>), so a crash in
    /// between leaves a duplicate dead letter, never a lost message. KEYS: entry hash, dead-letter list, counts per
    /// queue. ARGV: body, queue, reason, time (Unix ms), id.
    /// </summary>
    public const string StoreDeadLetter = """
        redis.call('HSET', KEYS[1], 'queue', ARGV[2], 'reason', ARGV[3], 'at', ARGV[4], 'body', ARGV[1])
        redis.call('RPUSH', KEYS[2], ARGV[5])
        redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
        return 1
        """;

    /// <summary>
    /// Forgets one dead letter (on a cluster: requeued, or stored for a message its consumer no longer held).
    /// KEYS: entry hash, dead-letter list, counts per queue. ARGV: id, queue. Returns 1 when it was there.
    /// </summary>
    public const string DropDeadLetter = """
        if redis.call('LREM', KEYS[2], 1, ARGV[1]) == 0 then return 0 end
        redis.call('DEL', KEYS[1])
        redis.call('HINCRBY', KEYS[3], ARGV[2], -1)
        return 1
        """;

    /// <summary>
    /// Removes messages from one in-flight list (acknowledgements, on a cluster where states live in other slots
    /// than the list), each forgetting its death count when it had one. KEYS: in-flight list, death counts.
    /// ARGV: the bodies. Returns how many were there.
    /// </summary>
    public const string Acknowledge = """
        local n = 0
        local counted = redis.call('EXISTS', KEYS[2]) == 1
        for i = 1, #ARGV do
          local removed = redis.call('LREM', KEYS[1], 1, ARGV[i])
          n = n + removed
          if counted and removed > 0 then redis.call('HDEL', KEYS[2], redis.sha1hex(ARGV[i])) end
        end
        return n
        """;

    /// <summary>
    /// Moves up to ARGV[1] dead letters, oldest first, to the tail of their queues.
    /// KEYS: dead-letter list, counts per queue. ARGV: max, entry key prefix, key prefix.
    /// </summary>
    public const string RequeueDeadLetters = WakeFunction + """
        local moved = 0
        for i = 1, tonumber(ARGV[1]) do
          local id = redis.call('LPOP', KEYS[1])
          if not id then break end
          local entry = ARGV[2] .. id
          local f = redis.call('HMGET', entry, 'queue', 'body')
          if f[1] and f[2] then
            redis.call('RPUSH', ARGV[3] .. f[1], f[2])
            redis.call('HINCRBY', KEYS[2], f[1], -1)
            conveyor_wake(ARGV[3] .. 'conveyor:{' .. f[1] .. '}:idle')
            moved = moved + 1
          end
          redis.call('DEL', entry)
        end
        return moved
        """;

    /// <summary>
    /// Returns every message of a consumer's in-flight list to the head of the queue, in delivery order, and drops
    /// the consumer from the registry: for a dead consumer (only if its heartbeat is gone, checked in the same step
    /// so a consumer that just renewed keeps its messages) or, with ARGV[3] = '1', for a consumer handing back its
    /// own messages as it stops. A dead consumer's messages each count one death in the queue's death counts (a
    /// hash: SHA-1 of the body → deaths), the delivery counter of the poison-message check; a hand-back does not.
    /// KEYS: heartbeat, in-flight list, queue, registry, death counts, idle flag. ARGV: consumer id, force.
    /// </summary>
    public const string Recover = WakeFunction + """
        if ARGV[2] ~= '1' and redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
        local n = 0
        while true do
          local v = redis.call('LMOVE', KEYS[2], KEYS[3], 'RIGHT', 'LEFT')
          if not v then break end
          if ARGV[2] ~= '1' then redis.call('HINCRBY', KEYS[5], redis.sha1hex(v), 1) end
          n = n + 1
        end
        redis.call('SREM', KEYS[4], ARGV[1])
        if ARGV[2] == '1' then redis.call('DEL', KEYS[1]) end
        if n > 0 then conveyor_wake(KEYS[6]) end
        return n
        """;

    /// <summary>
    /// Moves due delayed tasks to their queues, ZREM and RPUSH in one step, so a crash between the two cannot lose a
    /// task (machinery's WATCH/ZREM then a separate publish can). From machinery's <c>delayed_tasks</c>, the queue is
    /// the JSON's <c>RoutingKey</c> (machinery's re-publish does the same) and, when priorities are on, the
    /// <c>Priority</c> picks the list; a member without one goes to the mover's own queue, as machinery's worker
    /// publishes it to its default queue. On a cluster (ARGV[6] = '1') the first set is the queue's own and
    /// everything in it goes to the mover's queue, whose keys are declared. Returns {moved, earliest remaining score
    /// of each set or ''}.
    /// KEYS: machinery's delayed set (on a cluster the queue's own), the queue's private delayed set, the mover's
    /// queue list, its priority levels, its idle flag. ARGV: now (Unix ns), limit, key prefix, mover's queue,
    /// priorities on ('1'), cluster ('1').
    /// </summary>
    public const string MoveDue = WakeFunction + """
        local limit = tonumber(ARGV[2])
        local moved = 0
        local function push(queue, level, body)
          local scope = ARGV[3] .. 'conveyor:{' .. queue .. '}:'
          local own = queue == ARGV[4]
          if level > 0 then
            redis.call('RPUSH', scope .. 'p' .. level, body)
            redis.call('ZADD', own and KEYS[4] or scope .. 'priorities', level, level)
          else
            redis.call('RPUSH', own and KEYS[3] or ARGV[3] .. queue, body)
          end
          conveyor_wake(own and KEYS[5] or scope .. 'idle')
        end
        local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, limit)
        for _, m in ipairs(due) do
          local queue = ARGV[4]
          local level = 0
          local ok, msg = pcall(cjson.decode, m)
          if ok and type(msg) == 'table' then
            if ARGV[6] ~= '1' and type(msg.RoutingKey) == 'string' and msg.RoutingKey ~= '' then queue = msg.RoutingKey end
            if ARGV[5] == '1' and type(msg.Priority) == 'number' and msg.Priority >= 1 and msg.Priority <= 255 then
              level = math.floor(msg.Priority)
            end
          end
          redis.call('ZREM', KEYS[1], m)
          push(queue, level, m)
          moved = moved + 1
        end
        due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, limit)
        for _, m in ipairs(due) do
          redis.call('ZREM', KEYS[2], m)
          push(ARGV[4], 0, m)
          moved = moved + 1
        end
        local a = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
        local b = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
        return {moved, a[2] or '', b[2] or ''}
        """;

    /// <summary>
    /// Counts a queue's messages in one step. KEYS: queue, priority levels, private delayed set, registry, and the
    /// dead-letter counts or, on a cluster (where those are in another slot), the queue's own delayed set.
    /// ARGV: priority list prefix, in-flight key prefix, queue name, cluster ('1'). Returns {ready, delayed here, in
    /// flight, dead (0 on a cluster)}.
    /// </summary>
    public const string Statistics = """
        local ready = redis.call('LLEN', KEYS[1])
        for _, level in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
          ready = ready + redis.call('LLEN', ARGV[1] .. level)
        end
        local inflight = 0
        for _, id in ipairs(redis.call('SMEMBERS', KEYS[4])) do
          inflight = inflight + redis.call('LLEN', ARGV[2] .. id)
        end
        local delayed = redis.call('ZCARD', KEYS[3])
        local dead = 0
        if ARGV[4] == '1' then
          delayed = delayed + redis.call('ZCARD', KEYS[5])
        else
          dead = tonumber(redis.call('HGET', KEYS[5], ARGV[3]) or '0')
        end
        return {ready, delayed, inflight, dead}
        """;

    /// <summary>
    /// Deletes a queue's ready lists, private delayed set and death counts. KEYS: queue, priority levels, private
    /// delayed set, death counts, and on a cluster the queue's own delayed set. ARGV: priority list prefix.
    /// Returns how many messages went.
    /// </summary>
    public const string Purge = """
        local n = redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[3])
        if KEYS[5] then
          n = n + redis.call('ZCARD', KEYS[5])
          redis.call('DEL', KEYS[5])
        end
        for _, level in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
          n = n + redis.call('LLEN', ARGV[1] .. level)
          redis.call('DEL', ARGV[1] .. level)
        end
        redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
        return n
        """;

    /// <summary>
    /// Stores a task state, keeping the <c>CreatedAt</c> of the stored record (machinery reads the old state for it;
    /// here the read and the write are one step), with the result TTL, and announces the change.
    /// The new JSON comes in three parts: everything up to the CreatedAt value, the writer's own CreatedAt, the rest.
    /// KEYS: state key, watched set. ARGV: head, CreatedAt, tail, TTL (s), channel ('' = none), state name.
    /// </summary>
    public const string SetState = NotifyFunction + """
        local created = conveyor_created(redis.call('GET', KEYS[1]), ARGV[2])
        redis.call('SET', KEYS[1], ARGV[1] .. created .. ARGV[3], 'EX', ARGV[4])
        conveyor_notify(conveyor_watched(KEYS[2]), KEYS[2], ARGV[5], ARGV[6])
        return 1
        """;

    /// <summary>
    /// <see cref="SetState"/> for several states in one call, in order (a task's RECEIVED and STARTED): the stored
    /// CreatedAt is read once per key.
    /// KEYS: the watched set, then the state keys. ARGV: six per key, as for <see cref="SetState"/>.
    /// </summary>
    public const string SetStates = NotifyFunction + """
        local w = conveyor_watched(KEYS[1])
        local kept = {}
        for i = 2, #KEYS do
          local a = (i - 2) * 6
          local created = kept[KEYS[i]]
          if not created then
            created = conveyor_created(redis.call('GET', KEYS[i]), ARGV[a + 2])
            kept[KEYS[i]] = created
          end
          redis.call('SET', KEYS[i], ARGV[a + 1] .. created .. ARGV[a + 3], 'EX', ARGV[a + 4])
          conveyor_notify(w, KEYS[1], ARGV[a + 5], ARGV[a + 6])
        end
        return #KEYS - 1
        """;

    /// <summary>
    /// A worker's batch: states stored in order (each keeping the stored CreatedAt: read once per key and joined in
    /// here, or, when the caller knows it, the whole JSON as given), each followed where asked by the removal of
    /// its message from the consumer's in-flight list (the acknowledgement), all in one step. Returns the CreatedAt
    /// it read, once per key it read.
    /// KEYS: the watched set, then per step its state key (when it has a state) and its in-flight list (when it acks).
    /// ARGV: the state channel prefix ('' = no notifications) and the length of the state key prefix (a state's
    /// channel is the channel prefix and its task id), then per step a flag string ('S' state reading CreatedAt,
    /// five values: head, CreatedAt, tail, TTL, state name; 'F' whole state, three values: JSON, TTL, state name;
    /// 'A' ack, after either or alone), and the message body per ack.
    /// </summary>
    public const string Settle = NotifyFunction + """
        local w = conveyor_watched(KEYS[1])
        local kept = {}
        local out = {}
        local k = 2
        local skip = tonumber(ARGV[2])
        local a = 3
        while a <= #ARGV do
          local flags = ARGV[a]
          a = a + 1
          if flags == 'F' or flags == 'FA' then
            local key = KEYS[k]
            k = k + 1
            redis.call('SET', key, ARGV[a], 'EX', ARGV[a + 1])
            if w ~= nil and ARGV[1] ~= '' then
              conveyor_notify(w, KEYS[1], ARGV[1] .. string.sub(key, skip + 1), ARGV[a + 2])
            end
            a = a + 3
          elseif string.find(flags, 'S', 1, true) then
            local key = KEYS[k]
            k = k + 1
            local created = kept[key]
            if not created then
              created = conveyor_created(redis.call('GET', key), ARGV[a + 1])
              out[#out + 1] = created
            end
            kept[key] = created
            redis.call('SET', key, ARGV[a] .. created .. ARGV[a + 2], 'EX', ARGV[a + 3])
            if w ~= nil and ARGV[1] ~= '' then
              conveyor_notify(w, KEYS[1], ARGV[1] .. string.sub(key, skip + 1), ARGV[a + 4])
            end
            a = a + 5
          end
          if string.find(flags, 'A', 1, true) then
            redis.call('LREM', KEYS[k], 1, ARGV[a])
            k = k + 1
            a = a + 1
          end
        end
        return out
        """;

    /// <summary>
    /// PENDING states for messages that another broker carries: machinery's plain SET each (no read), announced to
    /// watched channels. KEYS: the watched set, then the state keys. ARGV: the state channel prefix ('' = none), the
    /// length of the state key prefix, then per state its JSON, TTL (s) and state name.
    /// </summary>
    public const string SetPending = NotifyFunction + """
        local w = conveyor_watched(KEYS[1])
        local skip = tonumber(ARGV[2])
        for i = 2, #KEYS do
          local a = 2 + (i - 2) * 3
          redis.call('SET', KEYS[i], ARGV[a + 1], 'EX', ARGV[a + 2])
          if w ~= nil and ARGV[1] ~= '' then
            conveyor_notify(w, KEYS[1], ARGV[1] .. string.sub(KEYS[i], skip + 1), ARGV[a + 3])
          end
        end
        return #KEYS - 1
        """;

    /// <summary>
    /// A producer's batch: per message its PENDING state (machinery's SetStatePending: a plain SET, no read), then
    /// the push as <see cref="Publish"/> does it; the queue is noted and its idle consumers woken once per batch.
    /// KEYS: the watched set, the queues set, then per message its state key, target list and priority levels.
    /// ARGV: the state channel prefix ('' = no notifications) and the length of the state key prefix, then per
    /// message its state JSON, TTL (s), state name, body, queue name, queue scope and priority level.
    /// </summary>
    public const string Enqueue = WakeFunction + NotifyFunction + """
        local w = conveyor_watched(KEYS[1])
        local skip = tonumber(ARGV[2])
        local noted = {}
        local woken = {}
        local n = (#KEYS - 2) / 3
        for i = 1, n do
          local k = 2 + (i - 1) * 3
          local a = 2 + (i - 1) * 7
          redis.call('SET', KEYS[k + 1], ARGV[a + 1], 'EX', ARGV[a + 2])
          if w ~= nil and ARGV[1] ~= '' then
            conveyor_notify(w, KEYS[1], ARGV[1] .. string.sub(KEYS[k + 1], skip + 1), ARGV[a + 3])
          end
          redis.call('RPUSH', KEYS[k + 2], ARGV[a + 4])
          if ARGV[a + 7] ~= '0' then redis.call('ZADD', KEYS[k + 3], ARGV[a + 7], ARGV[a + 7]) end
          if not noted[ARGV[a + 5]] then
            noted[ARGV[a + 5]] = true
            redis.call('SADD', KEYS[2], ARGV[a + 5])
          end
          woken[ARGV[a + 6]] = true
        end
        for scope, _ in pairs(woken) do conveyor_wake(scope .. 'idle') end
        return n
        """;

    /// <summary>
    /// The chord counter: records a member once (SADD), counts failures once, stores the member's trace context
    /// (when given) with its first completion. Then, unless every member was recorded here, it moves a cursor over
    /// the members in member order while their stored states are final: members that a Go machinery worker ran
    /// are never recorded in the set, only their states are written (its <c>GroupCompleted</c> reads them all).
    /// The member ids are copied once from machinery's group meta into a list, and the cursor only moves forward,
    /// so a group costs O(N) reads in all and a call O(1) amortized. Returns {completed, failed, first time,
    /// triggered}: completed is the member count once every member is final.
    /// On a cluster (ARGV[6] = '1') there is no cursor: the member states are in other slots, and no Go worker can
    /// share a cluster (machinery has no cluster support), so every member is recorded in the set.
    /// KEYS: members set, progress hash, traces hash, group meta, member id list.
    /// ARGV: task id, succeeded ('1'/'0'), TTL (ms), traceparent or '', key prefix of task states, cluster ('1').
    /// </summary>
    public const string CompleteGroupMember = """
        local p = redis.call('HMGET', KEYS[2], 'failed', 'triggered', 'count', 'scanned', 'peer_failed')
        local count = tonumber(p[3] or '-1')
        local first = redis.call('SADD', KEYS[1], ARGV[1])
        local failed = tonumber(p[1] or '0')
        if first == 1 then
          if count < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
          if ARGV[2] == '0' then
            failed = redis.call('HINCRBY', KEYS[2], 'failed', 1)
            redis.call('PEXPIRE', KEYS[2], ARGV[3])
          end
          if ARGV[4] and ARGV[4] ~= '' then
            redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
            redis.call('PEXPIRE', KEYS[3], ARGV[3])
          end
        end
        local completed = redis.call('SCARD', KEYS[1])
        local triggered = 0
        if p[2] then triggered = 1 end
        local scanned = tonumber(p[4] or '0')
        local peerFailed = tonumber(p[5] or '0')
        if count < 0 then
          local meta = redis.call('GET', KEYS[4])
          if not meta then
            -- A counter without a meta (a meta is stored before any member is published): no cursor, and no more GETs.
            redis.call('HSET', KEYS[2], 'count', 0)
            redis.call('PEXPIRE', KEYS[2], ARGV[3])
          else
            local ok, decoded = pcall(cjson.decode, meta)
            if ok and type(decoded) == 'table' and type(decoded['TaskUUIDs']) == 'table' then
              local ids = decoded['TaskUUIDs']
              count = #ids
              redis.call('DEL', KEYS[5])
              for i = 1, count, 1000 do
                redis.call('RPUSH', KEYS[5], unpack(ids, i, math.min(i + 999, count)))
              end
              redis.call('PEXPIRE', KEYS[5], ARGV[3])
              redis.call('HSET', KEYS[2], 'count', count)
              redis.call('PEXPIRE', KEYS[2], ARGV[3])
              redis.call('PEXPIRE', KEYS[1], ARGV[3])
            end
          end
        end
        if ARGV[6] ~= '1' and count > 0 and completed < count and scanned < count then
          local start = scanned
          local blocked = false
          while not blocked and scanned < count do
            local ids = redis.call('LRANGE', KEYS[5], scanned, scanned + 3)
            if #ids == 0 then break end
            for _, id in ipairs(ids) do
              if id ~= ARGV[1] and redis.call('SISMEMBER', KEYS[1], id) == 0 then
                local state = redis.call('GET', ARGV[5] .. id)
                local name = state and string.match(state, '"State"%s*:%s*"(%u+)"')
                if name == 'FAILURE' then
                  peerFailed = peerFailed + 1
                elseif name ~= 'SUCCESS' then
                  blocked = true
                  break
                end
              end
              scanned = scanned + 1
            end
          end
          if scanned ~= start then
            redis.call('HSET', KEYS[2], 'scanned', scanned, 'peer_failed', peerFailed)
          end
        end
        return {math.max(completed, scanned), failed + peerFailed, first, triggered}
        """;

    /// <summary>
    /// machinery's <c>TriggerChord</c> in one atomic step: while a Go worker holds machinery's redsync mutex
    /// (<c>TriggerChordMutex</c>, <c>SET NX PX</c>) it answers busy and the caller retries, as redsync does; else it
    /// reads the group meta, and sets <c>"ChordTriggered":true</c> (re-SET with the results' expiry, as machinery
    /// does) when it was false, recording the claimant. A script runs alone, so no Go worker can read or write the
    /// meta between its read and its write: the same mutual exclusion as holding the mutex.
    /// KEYS: mutex, group meta, progress hash. ARGV: claimant, meta TTL (s), progress TTL (ms).
    /// Returns 1 won, 2 won before by the same claimant and not yet published, 0 lost, -1 busy, -2 no meta,
    /// -3 a meta without ChordTriggered.
    /// </summary>
    public const string ClaimChord = """
        if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
        local meta = redis.call('GET', KEYS[2])
        if not meta then return -2 end
        if string.find(meta, '"ChordTriggered"%s*:%s*true') then
          if redis.call('HGET', KEYS[3], 'claimant') == ARGV[1] then return 2 end
          return 0
        end
        local updated, n = string.gsub(meta, '"ChordTriggered"%s*:%s*false', '"ChordTriggered":true', 1)
        if n == 0 then return -3 end
        redis.call('SET', KEYS[2], updated, 'EX', ARGV[2])
        redis.call('HSET', KEYS[3], 'triggered', '1', 'claimant', ARGV[1])
        redis.call('PEXPIRE', KEYS[3], ARGV[3])
        return 1
        """;

    /// <summary>
    /// Up to ARGV[1] stored member trace contexts (values of the traces hash), each member once: all of them when
    /// the hash is that small, else HRANDFIELD's distinct pick. KEYS: traces hash. ARGV: max count.
    /// </summary>
    public const string GroupTraceParents = """
        local n = tonumber(ARGV[1])
        if redis.call('HLEN', KEYS[1]) <= n then return redis.call('HVALS', KEYS[1]) end
        local picked = redis.call('HRANDFIELD', KEYS[1], n, 'WITHVALUES')
        local values = {}
        for i = 2, #picked, 2 do values[#values + 1] = picked[i] end
        return values
        """;

    /// <summary>
    /// Marks a chord's callback as published: triggered in the progress hash, the claim ended, and machinery's
    /// <c>ChordTriggered: true</c> in the group meta (when a claim did not set it already), keeping the meta's TTL. KEYS: progress hash, group meta. ARGV: TTL (ms).
    /// </summary>
    public const string MarkChordTriggered = """
        redis.call('HSET', KEYS[1], 'triggered', '1')
        redis.call('HDEL', KEYS[1], 'claimant')
        redis.call('PEXPIRE', KEYS[1], ARGV[1])
        local meta = redis.call('GET', KEYS[2])
        if meta then
          local updated, n = string.gsub(meta, '"ChordTriggered"%s*:%s*false', '"ChordTriggered":true', 1)
          if n > 0 then redis.call('SET', KEYS[2], updated, 'KEEPTTL') end
        end
        return 1
        """;

    /// <summary>
    /// One more redelivery of a task whose broker keeps no count (a RabbitMQ classic queue); the count lives as long
    /// as a result. KEYS: the task's redelivery counter. ARGV: TTL (ms). Returns the count.
    /// </summary>
    public const string CountRedelivery = """
        local n = redis.call('INCR', KEYS[1])
        redis.call('PEXPIRE', KEYS[1], ARGV[1])
        return n
        """;

    /// <summary>SET NX PX, and on success the next fencing token. KEYS: lock, fence counter. ARGV: owner, lease (ms).</summary>
    public const string LockAcquire = """
        if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return redis.call('INCR', KEYS[2]) end
        return 0
        """;

    /// <summary>Extends the lease if the owner still holds it. KEYS: lock. ARGV: owner, lease (ms).</summary>
    public const string LockRenew = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
        return 0
        """;

    /// <summary>Deletes the lock if the owner still holds it. KEYS: lock. ARGV: owner.</summary>
    public const string LockRelease = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """;

    /// <summary>
    /// Records the token when it is greater than the recorded one (or none is); 1 for the call that advanced it.
    /// KEYS: fence. ARGV: token. Compared as numbers: tokens stay below 2^53 (Unix milliseconds do), where Lua's
    /// doubles are exact.
    /// </summary>
    public const string FenceAdvance = """
        local current = redis.call('GET', KEYS[1])
        if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
        redis.call('SET', KEYS[1], ARGV[1])
        return 1
        """;
}
