/* kubus/store.h — the `store` bus service: its operations and body shapes.
 *
 * etcd v3 MVCC semantics. Every store plugin (store-lmdb, store-etcd)
 * implements exactly this, and one contract suite (tests/store/) checks both.
 * By the core's default policy only frontend plugins (the API server) may
 * call `store` or subscribe to `store/…` topics.
 *
 * Bodies are msgpack maps; keys are msgpack str, values msgpack bin (any
 * bytes; the API server stores msgpack-encoded objects). Revisions are
 * positive integers. Absent optional fields take the default shown.
 *
 * A KV, wherever one appears:
 *     {key: str, value: bin, create_rev: int, mod_rev: int, version: int}
 * (`value` left out when keys_only was asked.)
 *
 * op "revision"   {}  ->  {rev, compact_rev}
 *
 * op "get"        {key, rev: 0}
 *                 ->  {kv: KV | nil, rev}
 *     rev > 0 reads the key as it was at that revision (KB_EEXPIRED if
 *     compacted, KB_EINVAL if in the future). `rev` in the reply is the
 *     revision the read was served at.
 *
 * op "range"      {prefix, limit: 0, continue: nil, count_only: false,
 *                  keys_only: false, rev: 0}
 *                 ->  {kvs: [KV…], count, more: bool, continue: str|nil, rev}
 *     Keys starting with `prefix` ("" = all), in key order. `count` is the
 *     number of matching keys in the whole range (not only this page). A
 *     `continue` token from a reply resumes after the last key returned, at
 *     the same revision as the first page (KB_EEXPIRED once compacted);
 *     when `continue` is given `rev` is ignored.
 *
 * op "put"        {key, value, if_mod_rev: nil, prev: false}
 *                 ->  {rev, kv: KV (without value), prev: KV | nil}
 *     if_mod_rev 0: the key must not exist; N > 0: its mod_rev must be N.
 *     On a failed condition: error KB_ECONFLICT whose body is
 *     {kv: KV | nil, rev} (the current value), and nothing changes.
 *
 * op "delete"     {key, if_mod_rev: nil, prev: false}
 *                 ->  {rev, deleted: 0|1, prev: KV | nil}
 *     A missing key without a condition: deleted 0, rev unchanged.
 *     With a condition that fails (including a missing key): KB_ECONFLICT
 *     as for put.
 *
 * op "txn"        {compare: [C…], success: [O…], failure: [O…]}
 *                 ->  {succeeded: bool, rev, results: [R…]}
 *     C = {key, target: "mod"|"create"|"version"|"exists",
 *          op: "="|"!="|"<"|">", value: int | bool (for exists)}
 *     O = {put: {key, value}} | {delete: {key}} | {get: {key}}
 *     R = {put: {rev}} | {delete: {deleted, prev}} | {get: {kv}}
 *     All compares true -> `success` ops, else `failure` ops, atomically,
 *     one revision for the whole txn when it writes.
 *
 * op "watch"      {prefix, rev: 0, prev: false, topic}
 *                 ->  {watch_id: int, rev}
 *     Events for keys under `prefix` with mod revision >= rev (rev 0: from
 *     the next write on) are published on `topic`, which the caller must
 *     have subscribed to before asking. Each publication:
 *         {watch_id, events: [E…]}   E = {type: "put"|"delete", kv: KV,
 *                                          prev: KV | nil (when prev asked)}
 *     in revision order, none lost, none repeated; one publication per
 *     committed revision or a batch of them. A delete event's kv has the key,
 *     mod_rev = the deleting revision, and no value. rev <= compact_rev:
 *     error KB_EEXPIRED with body {compact_rev}, as Kubernetes' 410 Gone.
 *     If the store must drop a watcher it publishes
 *     {watch_id, error: {code: "Expired", message}} and forgets it.
 *
 * op "unwatch"    {watch_id}  ->  {}; an unknown watch_id is KB_ENOTFOUND.
 *     The topic of a watch must start with "store/": by the default policy
 *     that is where only the store may publish and only frontends listen.
 *
 * op "compact"    {rev}  ->  {compact_rev}
 *     Drops history older than rev; reads and watches below it get
 *     KB_EEXPIRED. A rev at or below compact_rev changes nothing and
 *     answers the current compact_rev.
 *
 * Keys are at most 511 bytes (LMDB's limit; Kubernetes keys are far shorter).
 * Errors: an empty, non-string or longer key, a value that is not bin, a value over
 * the size limit (1.5 MiB by default) -> KB_EINVAL, and nothing changes.
 */
#ifndef KUBUS_STORE_H
#define KUBUS_STORE_H

#define KB_STORE_SERVICE "store"
#define KB_STORE_VALUE_MAX_DEFAULT (1536u * 1024)

#endif
