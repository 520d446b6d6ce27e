/* core/auth.h — who a peer is, and what it may do.
 *
 * One model for the bus and for HTTP: a token file shaped like
 * kube-apiserver's (token,user,uid,"group1,group2"), a bus ACL (principal ->
 * services+ops it may call, topics it may publish or subscribe), and
 * RBAC-shaped rules for API requests (verbs x apiGroups x resources x
 * namespaces x names). Deny by default.
 *
 * Config (under the host's `auth:` key):
 *
 *   auth:
 *     token_file: tokens.csv        # relative to the data dir
 *     policy:                       # bus ACL; omitted = the built-in default
 *       - users: [admin]            # and/or groups: [...]
 *         groups: [system:masters]
 *         call: ["*"]               # service patterns; "!store" excludes
 *         ops: ["*"]
 *         publish: ["*"]
 *         subscribe: ["*"]
 *     rbac:                         # API rules; omitted = the built-in default
 *       - groups: [system:masters]
 *         verbs: ["*"]
 *         apiGroups: ["*"]
 *         resources: ["*"]          # "pods", "pods/log", "*"
 *         namespaces: ["*"]         # "" or absent = all
 *         names: []                 # empty = all
 *
 * Patterns: "*" matches all; "x*" matches a prefix; "!p" in a list excludes
 * what p matches even when another entry allowed it. A rule applies when the
 * principal's user is in `users` or one of its groups is in `groups`.
 *
 * Built-in default policy (also what every shipped config spells out;
 * "store/\*" below is the pattern store/ followed by *, escaped because a C
 * comment cannot hold a slash and a star side by side):
 *   group kubus:plugins   call ["*", "!store"], ops ["*"], publish
 *                         ["*", "!store/\*"], subscribe ["*", "!store/\*"]
 *   group kubus:kind:frontend   call ["store"], ops ["*"], publish
 *                         ["store/\*"], subscribe ["store/\*"]
 *   group kubus:kind:store      publish ["store/\*"]
 *   group system:masters  everything
 *   group system:nodes    call ["*", "!store"], ops ["*"], publish
 *                         ["*", "!store/\*"], subscribe ["*", "!store/\*"]
 *   group system:bootstrappers  call ["join"], ops ["csr"] (core/join.h)
 * Built-in default RBAC: system:masters everything; kubus:plugins
 * everything (plugins act for the cluster); system:nodes everything on
 * nodes, leases, pods, pods/status, events, configmaps, secrets, services,
 * endpoints, endpointslices (the Node authorizer narrows this later).
 */
#ifndef KUBUS_CORE_AUTH_H
#define KUBUS_CORE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <kubus/kubus.h>

#include "../sdk/src/internal.h"

struct kb_auth;

struct kb_auth *kb_auth_new(void);
void kb_auth_free(struct kb_auth *a);

/* Load the token file. Refused (KB_EFORBIDDEN, message says so and names
 * the mode) when group or others may read it. A missing file is an empty
 * token set, not an error. The host re-reads the file when its mtime
 * changes (checked at most once a second in kb_auth_authenticate). */
int kb_auth_load_tokens(struct kb_auth *a, const char *path, char *err,
    size_t errlen);

/* Load the `policy` and `rbac` subtrees (either may be NULL: built-in
 * default). Errors name file, line and column. */
int kb_auth_load_policy(struct kb_auth *a, const kb_conf *policy,
    const kb_conf *rbac, char *err, size_t errlen);

/* An in-memory token (isolated plugin children, tests); never written. */
int kb_auth_add_token(struct kb_auth *a, const char *token, const char *user,
    const char *uid, const char *const *groups, size_t ngroups);

/* Who holds this token. Constant-time over the whole token set; the token
 * is never logged. On success *out is a new ident with endpoint `endpoint`
 * (caller unrefs). KB_EUNAUTHORIZED otherwise. */
int kb_auth_authenticate(struct kb_auth *a, const char *token,
    const char *endpoint, struct kb_ident **out);

/* Bus ACL checks. */
bool kb_auth_may_call(struct kb_auth *a, const struct kb_ident *who,
    const char *service, const char *op);
bool kb_auth_may_publish(struct kb_auth *a, const struct kb_ident *who,
    const char *topic);
bool kb_auth_may_subscribe(struct kb_auth *a, const struct kb_ident *who,
    const char *pattern);

/* RBAC check for an API request. `user`/`groups` as authenticated;
 * api_group "" for core; subresource NULL or "log", "status", …; namespace
 * NULL or "" for cluster-scoped; name NULL for collections. True = allowed.
 * When denied, `reason` (if not NULL) gets a one-line explanation. */
bool kb_auth_authorize(struct kb_auth *a, const char *user,
    const char *const *groups, size_t ngroups, const char *verb,
    const char *api_group, const char *resource, const char *subresource,
    const char *namespace_, const char *name, char *reason, size_t reasonlen);

/* Constant-time comparison of two NUL-terminated strings. */
bool kb_auth_streq_ct(const char *a, const char *b);

/* Glob used by policy patterns: "*", "prefix*", exact, and "*\/sub" (that
 * subresource of any resource; only RBAC `resources` accept it). */
bool kb_auth_glob(const char *pattern, const char *s);

/* --- token file maintenance (`kubus token …`) ---------------------------- */

/* Append a new random token (32 bytes of /dev/urandom, hex) for `user`.
 * Creates the file 0600 if missing. Writes the token to `token`. */
int kb_tokens_create(const char *path, const char *user, const char *uid,
    const char *groups_csv, char *token, size_t tokenlen, char *err,
    size_t errlen);
/* The first token of `user` (KB_ENOTFOUND when it has none). */
int kb_tokens_find_user(const char *path, const char *user, char *token,
    size_t tokenlen, char *err, size_t errlen);
/* Print "USER UID GROUPS TOKEN-PREFIX…" lines. */
int kb_tokens_list(const char *path, FILE *out, char *err, size_t errlen);
/* Remove every line whose token or user equals `what` (atomic rewrite).
 * KB_ENOTFOUND when none matched. */
int kb_tokens_revoke(const char *path, const char *what, char *err,
    size_t errlen);

/* --- the `auth` bus service ---------------------------------------------- *
 * op "authenticate"  {token}  ->  {user, uid, groups: [str…]}
 *                    or KB_EUNAUTHORIZED
 * op "authorize"     {user, groups, verb, apiGroup, resource, subresource,
 *                     namespace, name}  ->  {allowed: bool, reason: str}
 * op "issue"         {user, groups}  ->  {token}: a new token appended to the
 *                    token file; only for frontends (kubus:kind:frontend)
 *                    and system:masters
 * Served by the host on behalf of the core (endpoint "kubus").
 */
void kb_auth_serve(void *auth, kb_msg *req);

#endif
