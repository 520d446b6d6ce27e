/* plugins/apiserver/api.h — the API server's internal contracts.
 *
 * The API server is one plugin built from small files with one job each:
 *
 *   server.c    the plugin: config, init/start/stop, the `api` bus service
 *   http.c      libmicrohttpd: TLS, limits, routing a request to the parts
 *               below, gzip, chunked streams (watch, logs), 413/429/timeouts
 *   pki.c       the CA and serving certificate, admin.kubeconfig
 *   authn.c     bearer tokens -> user through the core's `auth` service;
 *               RBAC checks through it too (and the Node authorizer)
 *   codec.c     request bodies (JSON, YAML, Kubernetes protobuf) -> json_t;
 *               json_t <-> msgpack (the store's and the bus's form)
 *   registry.c  the resource table (group, version, kind, plural, scope,
 *               short names, categories, subresources, columns)
 *   discovery.c /api, /apis (aggregated v2 and legacy), /openapi/v3
 *   table.c     meta.k8s.io/v1 Table rows, Kubernetes' columns
 *   select.c    label and field selectors
 *   store.c     the `store` bus service as typed calls
 *   cache.c     the watch cache: one store watch per resource, fan-out
 *   rest.c      the verbs: get, list, watch, create, update, patch, delete,
 *               deletecollection; subresources status, scale, binding,
 *               eviction; resourceVersion, generation, finalizers,
 *               graceful deletion, uid, timestamps, generateName
 *   patch.c     JSON patch, merge patch, strategic merge patch, apply
 *   admit.c     defaulting, validation (422 with causes), NamespaceLifecycle,
 *               ClusterIP and NodePort allocation
 *   metrics.c   /metrics in Prometheus text
 *
 * Objects inside the API server are jansson trees (json_t): they are parsed
 * once at the HTTP edge (or converted once from msgpack at the bus edge),
 * mutated in place by admission and patching, and stored as msgpack. The
 * field names are exactly Kubernetes' JSON names in both forms.
 *
 * Ownership: a function that returns json_t * returns a new reference
 * unless its comment says "borrowed". Functions that take json_t * borrow it
 * unless they say "steals".
 */
#ifndef KUBUS_APISERVER_API_H
#define KUBUS_APISERVER_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <kubus/kubus.h>

/* --- errors: Kubernetes Status ------------------------------------------------ */

struct api_error {
	int code;              /* HTTP code: 400, 404, 409, 422, … (0 = none) */
	const char *reason;    /* "NotFound", "Invalid", …; static */
	char message[1024];
	char kind[64];         /* details.kind: "pods", "Deployment" … */
	char name[256];        /* details.name */
	json_t *causes;        /* details.causes array or NULL (owned) */
};

/* Set code/reason/message (printf). Leaves kind/name/causes alone. */
void api_err(struct api_error *e, int code, const char *reason,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Add a cause {reason, message, field}; reason e.g. "FieldValueInvalid",
 * "FieldValueRequired", "FieldValueNotSupported", "FieldValueDuplicate",
 * "FieldValueForbidden", "FieldValueTooLong". Sets code 422/Invalid if
 * unset. */
void api_err_cause(struct api_error *e, const char *reason, const char *field,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Finish a 422: message "<Kind> \"<name>\" is invalid: [<cause>, …]" as
 * Kubernetes writes it (one cause: no brackets). */
void api_err_invalid(struct api_error *e, const char *kind, const char *name);
/* The meta/v1 Status object for an error (new reference). */
json_t *api_status(const struct api_error *e);
/* A Status Success (for deletes that return Status). */
json_t *api_status_success(const char *kind, const char *name);
void api_err_clear(struct api_error *e);
/* From a bus/store kb_err: NotFound, Conflict, … with a message. */
void api_err_from_kb(struct api_error *e, int kb_code, const char *what);

/* --- the resource table (registry.c) ---------------------------------------- */

enum api_sub {
	API_SUB_STATUS = 1 << 0,
	API_SUB_SCALE = 1 << 1,
	API_SUB_BINDING = 1 << 2,
	API_SUB_EVICTION = 1 << 3,
	API_SUB_LOG = 1 << 4,
	API_SUB_EXEC = 1 << 5,
	API_SUB_PORTFORWARD = 1 << 6,
	API_SUB_ATTACH = 1 << 7,
	API_SUB_PROXY = 1 << 8,
};

struct api_column {
	const char *name;        /* "NAME", "READY", … as kubectl prints them */
	const char *type;        /* "string", "integer", "date" */
	const char *format;      /* "name" for the name column, else "" */
	int priority;            /* 1 = only with -o wide */
	const char *description;
};

struct api_resource;
/* Fill `cells` (an empty array) with one value per column. */
typedef void (*api_row_fn)(const struct api_resource *r, const json_t *obj,
    json_t *cells);
/* Defaulting: mutate obj in place (create, and update of spec). `old` is
 * NULL on create. */
typedef void (*api_default_fn)(json_t *obj, const json_t *old);
/* Validation: add causes to e (field paths as Kubernetes writes them,
 * e.g. "spec.replicas", "spec.template.spec.containers[0].image"). */
typedef void (*api_validate_fn)(const json_t *obj, const json_t *old,
    struct api_error *e);

struct api_resource {
	const char *group;        /* "" for core */
	const char *version;      /* "v1" */
	const char *kind;         /* "Pod" */
	const char *list_kind;    /* "PodList" */
	const char *plural;       /* "pods" */
	const char *singular;     /* "pod" */
	bool namespaced;
	const char *short_names[4]; /* NULL-terminated */
	const char *categories[3];  /* "all" where Kubernetes has it */
	unsigned subresources;      /* enum api_sub bits */
	bool has_status;            /* status is a subresource: PUT to the
	                             * main resource keeps the old status */
	bool generation;            /* bump metadata.generation on spec change */
	bool virtual_;              /* not stored (selfsubjectaccessreviews) */
	const struct api_column *columns; /* NULL: NAME AGE */
	size_t ncolumns;
	api_row_fn row;
	api_default_fn defaults;
	api_validate_fn validate;
};

extern const struct api_resource api_resources[];
extern const size_t api_nresources;

/* "apps/v1" or "v1" */
const char *api_group_version(const struct api_resource *r, char *buf,
    size_t len);
/* "Deployment.apps" or "Pod": the kind as Kubernetes' GroupKind names it
 * in messages ("Deployment.apps \"x\" is invalid: …"). */
const char *api_kind_qual(const struct api_resource *r, char *buf,
    size_t len);
const struct api_resource *api_resource_find(const char *group,
    const char *version, const char *plural);
/* By apiVersion ("apps/v1", "v1") and kind. */
const struct api_resource *api_resource_by_kind(const char *api_version,
    const char *kind);
/* The store key: /registry/<plural>/<ns>/<name> (namespaced) or
 * /registry/<plural>/<name>; name NULL gives the prefix ending in '/'
 * (for a namespace, or for all namespaces when ns is NULL). Non-core
 * groups prefix the plural with the group: /registry/apps/deployments/…
 * malloc'd. */
char *api_key(const struct api_resource *r, const char *ns, const char *name);

/* --- requests and responses (http.c fills them, rest.c answers) -------------- */

struct api_user {
	char *name;
	char *uid;
	char **groups;
	size_t ngroups;
};

enum api_verb {
	API_GET = 1, API_LIST, API_WATCH, API_CREATE, API_UPDATE, API_PATCH,
	API_DELETE, API_DELETECOLLECTION,
};

enum api_patch_type {
	API_PATCH_NONE = 0,
	API_PATCH_JSON,       /* application/json-patch+json */
	API_PATCH_MERGE,      /* application/merge-patch+json */
	API_PATCH_STRATEGIC,  /* application/strategic-merge-patch+json */
	API_PATCH_APPLY,      /* application/apply-patch+yaml */
};

/* A caller that can answer a request after api_handle returns (the bus
 * service; HTTP cannot) gives req->later. A create, binding, update or
 * patch then does not wait for its last step, one store put: the handler
 * starts the put, sets resp->later and returns; when the store replies,
 * answer() gets the response (and frees it), on the store reply's thread.
 * again() instead asks the caller to handle the request once more without
 * `later`: the put met a newer version (or none), and the retry must read
 * the store, which that thread may not do. One of the two is called,
 * once. */
struct api_resp;
struct api_later {
	void (*answer)(struct api_later *l, struct api_resp *resp);
	void (*again)(struct api_later *l);
};

struct api_req {
	struct api_server *srv;
	int verb;                        /* enum api_verb */
	const struct api_resource *res;
	char *ns;                        /* NULL: cluster-scoped or all */
	char *name;                      /* NULL: collection */
	char *sub;                       /* "status", "scale", … or NULL */
	/* query */
	char *label_selector, *field_selector;
	char *resource_version;          /* as given, or NULL */
	char *resource_version_match;
	char *cont;
	int64_t limit;                   /* 0 = none */
	int64_t timeout_s;               /* watch timeoutSeconds, 0 = default */
	bool allow_bookmarks;
	bool send_initial_events;
	char *field_manager;
	char *field_validation;          /* "Strict", "Warn", "Ignore", NULL */
	bool dry_run;
	bool force;                      /* apply force=true */
	/* log subresource */
	char *container;
	bool follow, previous, timestamps;
	int64_t tail_lines, since_seconds, limit_bytes; /* -1 = unset */
	/* headers */
	bool want_table;                 /* Accept as=Table;g=meta.k8s.io */
	bool include_object_none;        /* ?includeObject=None */
	bool include_object_full;        /* ?includeObject=Object */
	int patch_type;                  /* enum api_patch_type */
	/* body, parsed (owned); NULL when there is none */
	json_t *body;
	/* a bus create's object, when the bus service left it as msgpack
	 * (borrowed from the request; body is NULL then): a core Event,
	 * which rest.c may store without a json_t (evwrite.c) */
	const void *obj_mp;
	size_t obj_mp_len;
	const struct api_user *user;     /* borrowed for the request */
	bool from_peer;                  /* a peer API server forwarded it:
					  * never forward it again */
	bool want_mp;                    /* answer in msgpack: a create or
					  * update may fill resp->mp */
	struct api_later *later;         /* may answer later (above) */
};

/* A stream the HTTP layer copies to the client (watch events, logs):
 * read() returns bytes written to buf, 0 when nothing came in time (the
 * HTTP layer calls again), -1 at the end; a stream without arm() blocks up
 * to timeout_ms for them, one with arm() is read with 0 and never waits.
 * arm(), where there is one, lets an event loop wait without a thread:
 * false when read() has something already; else true, and wake(arg) is
 * called once (under the stream's own lock, so close() waits for it) when
 * read() may have more. A stream without arm() is read by a thread of its
 * own (http.c). */
struct api_stream {
	ssize_t (*read)(struct api_stream *s, char *buf, size_t max,
	    int timeout_ms);
	bool (*arm)(struct api_stream *s, void (*wake)(void *), void *arg);
	void (*close)(struct api_stream *s); /* frees it */
	const char *content_type;            /* "application/json", "text/plain" */
};

/* pump.c: in itself when it has arm(), else a stream with arm() that a
 * thread fills from it (in is closed with it); NULL when out of memory
 * or threads (in closed). api_stream_pumps_wait: until every such thread
 * has ended (the HTTP side's stop, after closing its streams). */
struct api_stream *api_stream_pumped(struct api_stream *in);
void api_stream_pumps_wait(void);

struct api_resp {
	int code;                 /* HTTP status */
	json_t *json;             /* body (owned), or: */
	char *text;               /* plain body (owned) */
	size_t text_len;
	const char *content_type; /* default "application/json" */
	struct api_stream *stream;/* or a stream (owned) */
	char *warning;            /* Warning: 299 - "…" header (owned) */
	char *mp;                 /* json as msgpack (owned), when a write made
	                           * it on the way (req->want_mp) */
	size_t mp_len;
	bool later;               /* req->later will answer: nothing else set */
	/* Cacheable answers (the OpenAPI documents): */
	const char *etag;         /* ETag, quoted (static storage); a request
	                           * whose If-None-Match names it gets 304 */
	bool immutable;           /* Cache-Control: public, immutable; Expires
	                           * in a year (rather than no-cache) */
	const char *location;     /* Location of a redirect (static storage) */
};

/* rest.c: answer a resource request. Never fails to fill resp: errors
 * become a Status with the right code. */
void api_handle(struct api_req *req, struct api_resp *resp);
void api_req_free(struct api_req *req);   /* frees fields, not req */
void api_resp_free(struct api_resp *resp);

/* --- bodies (codec.c) ---------------------------------------------------------- */

/* Parse a request body by Content-Type: application/json (and the patch
 * types, which are JSON), application/yaml or apply-patch+yaml (YAML or
 * JSON), application/vnd.kubernetes.protobuf (the k8s\0 envelope; the kinds
 * kubectl's create subcommands and auth can-i send). Depth-limited; invalid
 * UTF-8 rejected. NULL with e set to 400 BadRequest / 415 on failure. */
json_t *api_parse_body(const char *content_type, const void *data,
    size_t len, struct api_error *e);
json_t *api_json_from_mp(const msgpack_object *o);
/* Append one msgpack value for j (integers stay integers, reals doubles). */
int api_mp_from_json(msgpack_packer *pk, const json_t *j);
/* The msgpack bytes of j as a bin-ready buffer (malloc'd). */
int api_mp_encode(const json_t *j, char **out, size_t *len);
json_t *api_mp_decode(const void *data, size_t len);
/* The msgpack of a stored object (data, as api_mp_encode wrote it, which
 * has no metadata.resourceVersion) with resourceVersion rev: the bytes
 * api_mp_encode writes for it once decoded and given that version, made
 * without decoding it. KB_EINVAL when the bytes are not such an object
 * (no metadata map, or one with a resourceVersion already). Read up to
 * the end of metadata only: what follows is copied unchecked, so data
 * must be bytes this server encoded (a store's value). */
int api_mp_with_rv(const void *data, size_t len, int64_t rev, char **out,
    size_t *outlen);
/* Compact JSON text (malloc'd). */
char *api_json_text(const json_t *j, size_t *len);
/* The same text for an object's msgpack, without its json_t: what
 * api_json_text(api_mp_decode(data, len)) gives, byte for byte; NULL
 * where that has no text or this cannot tell (a real number, whose
 * formatting is jansson's). */
char *api_mp_json(const void *data, size_t len, size_t *outlen);

/* --- selectors (select.c) ------------------------------------------------------ */

struct api_selector;
/* Parse a labelSelector ("a=b,c!=d,e in (x,y),f notin (z),g,!h"); NULL
 * with e set (400) when malformed. An empty or NULL string selects all. */
struct api_selector *api_label_selector(const char *s, struct api_error *e);
/* Parse a fieldSelector for a resource ("metadata.name=x,spec.nodeName!=",
 * involvedObject.uid, status.phase, …); unsupported fields are a 400 as
 * in Kubernetes. */
struct api_selector *api_field_selector(const struct api_resource *r,
    const char *s, struct api_error *e);
/* From a LabelSelector object ({matchLabels, matchExpressions}). */
struct api_selector *api_selector_from_json(const json_t *sel,
    struct api_error *e);
bool api_selector_match(const struct api_selector *s, const json_t *obj);
void api_selector_free(struct api_selector *s);

/* --- the store (store.c) ------------------------------------------------------- */

struct api_store;
struct api_kv {
	json_t *obj;          /* owned; metadata.resourceVersion set */
	int64_t mod_rev;
	int64_t create_rev;
};
/* get: KB_ENOTFOUND when absent. */
int api_store_get(struct api_server *s, const char *key, struct api_kv *out,
    struct api_error *e);
/* Create (must not exist: KB_EEXIST) or update (if_mod_rev > 0:
 * KB_ECONFLICT when the object changed). obj's resourceVersion is ignored
 * and set from the new revision on success. */
int api_store_put(struct api_server *s, const char *key, json_t *obj,
    int64_t if_mod_rev, int64_t *rev, struct api_error *e);
/* The same, and when mp is given, obj as msgpack (what api_mp_encode
 * writes for it) on success, made from the stored bytes; *mp stays NULL
 * when that cannot be done. */
int api_store_put_mp(struct api_server *s, const char *key, json_t *obj,
    int64_t if_mod_rev, int64_t *rev, char **mp, size_t *mp_len,
    struct api_error *e);
/* A put's result, for the calls below: rc and e as the blocking call
 * gives them (e is cleared after), mp (owned) the stored object's msgpack
 * when it was asked for. */
typedef void (*api_put_done)(void *arg, int rc, char *mp, size_t mp_len,
    struct api_error *e);
/* api_store_put_mp without waiting for the store: 0 when the put is on
 * its way, and done(arg, …) is then called once, on the thread that takes
 * the store's reply, which must not block (no store call there). obj is
 * only encoded: the caller may free it once this returns (done's mp is the
 * stored object, when asked for, on success). Else the error, e set, and
 * done is not called. */
int api_store_put_mp_async(struct api_server *s, const char *key, json_t *obj,
    int64_t if_mod_rev, bool want_mp, api_put_done done, void *arg,
    struct api_error *e);
int api_store_delete(struct api_server *s, const char *key,
    int64_t if_mod_rev, int64_t *rev, struct api_error *e);
/* api_store_delete without waiting, as api_store_put_mp_async: done gets
 * no bytes. */
int api_store_delete_async(struct api_server *s, const char *key,
    int64_t if_mod_rev, api_put_done done, void *arg, struct api_error *e);
/* List a prefix: items (array, owned) at *rev; paging as store.h. */
int api_store_list(struct api_server *s, const char *prefix, int64_t limit,
    const char *cont, int64_t at_rev, json_t **items, int64_t *rev,
    char **next_cont, int64_t *remaining, struct api_error *e);

/* --- the watch cache (cache.c) ------------------------------------------------- */

/* One event: type "ADDED", "MODIFIED", "DELETED"; obj borrowed. */
struct api_event {
	const char *type;
	const json_t *obj;
	const json_t *old;    /* previous version, NULL for ADDED */
	int64_t rev;
	/* obj as msgpack (api_mp_encode), encoded once per event and shared
	 * by every callback watcher; borrowed for the call. NULL: encode obj. */
	const char *obj_mp;
	size_t obj_mp_len;
};

/* Start a watch stream for a request (list-watch from req's
 * resourceVersion, selectors, bookmarks, timeout): the stream yields one
 * JSON line per event ({"type","object"}), encoded once per event and
 * format and shared by every watcher; a Table line when req->want_table.
 * A resourceVersion older than the cache holds gives one ERROR event with
 * a 410 Expired Status, then the end. */
struct api_stream *api_watch(struct api_server *s, const struct api_req *req,
    struct api_error *e);
/* Callback watchers (the `api` bus service, controllers in-process):
 * fn is called for each event until api_unwatch. */
typedef void (*api_event_fn)(void *arg, const struct api_event *ev);

/* --- patches (patch.c) --------------------------------------------------------- */

/* Apply a patch of `type` to `obj` (borrowed), returning the patched
 * object (new reference), or NULL with e set (422/400, as Kubernetes
 * answers a bad patch). Strategic merge knows Kubernetes' merge keys for
 * the built-in kinds (containers by name, ports by containerPort, env by
 * name, volumes by name, volumeMounts by mountPath, …) and the directives
 * $patch, $setElementOrder/<list>, $retainKeys, $deleteFromPrimitiveList. */
json_t *api_patch(int type, const struct api_resource *r, const json_t *obj,
    const json_t *patch, struct api_error *e);

/* --- admission (admit.c) ------------------------------------------------------- */

/* Defaulting then validation for a create or update of r. `old` NULL on
 * create. NamespaceLifecycle and allocation are in rest.c, which knows
 * the store. Returns false with e set (422 with causes). */
bool api_admit(const struct api_resource *r, json_t *obj, const json_t *old,
    struct api_error *e);
/* Strict field validation: unknown fields of the built-in kinds (as
 * fieldValidation=Strict asks). Adds causes "unknown field \"spec.x\"". */
bool api_check_unknown_fields(const struct api_resource *r, const json_t *obj,
    struct api_error *e);

/* --- tables (table.c) ---------------------------------------------------------- */

/* A meta.k8s.io/v1 Table for a list (items borrowed) or one object;
 * rows carry PartialObjectMetadata objects (or full objects when
 * includeObject=Object). */
json_t *api_table(const struct api_resource *r, const json_t *items,
    const char *resource_version, const char *cont, bool wide_objects);
json_t *api_table_row(const struct api_resource *r, const json_t *obj);
/* "5m", "3h", "2d" as kubectl prints ages (for events' LAST SEEN). */
void api_age(const char *rfc3339, char *buf, size_t len);

/* --- discovery (discovery.c) ----------------------------------------------------- */

/* Answer GET /api, /apis, /api/v1, /apis/<g>, /apis/<g>/<v>,
 * /openapi/v3, /openapi/v3/<path>, /version; false when path is not one
 * of these. `accept` picks aggregated v2 or legacy; `hash` is the
 * request's ?hash= (NULL: none), which an OpenAPI document's URL carries. */
bool api_discovery(const char *path, const char *accept, const char *hash,
    struct api_resp *resp);

/* --- authn/authz (authn.c) ------------------------------------------------------ */

/* Who holds this bearer token (through the `auth` bus service). */
int api_authenticate(struct api_server *s, const char *token,
    struct api_user *out);
void api_user_free(struct api_user *u);
/* May u do verb on resource (with sub) in ns/name? When not, reason gets
 * Kubernetes' message. */
bool api_authorize(struct api_server *s, const struct api_user *u,
    const char *verb, const char *group, const char *resource,
    const char *sub, const char *ns, const char *name, char *reason,
    size_t rlen);

/* --- utilities --------------------------------------------------------------------- */

/* RFC 3339 UTC "2026-11-26T13:45:00Z" for now. */
void api_now(char *buf, size_t len);
/* Milliseconds of CLOCK_MONOTONIC. */
int64_t api_mono_ms(void);
/* The wall clock in ms since the epoch. */
int64_t api_wall_ms(void);
/* A random v4 UUID. */
void api_uuid(char *buf, size_t len);
void api_random(void *out, size_t n); /* never fails */
/* DNS-1123 checks with Kubernetes' messages (NULL when valid). */
const char *api_dns1123_subdomain(const char *s);
const char *api_dns1123_label(const char *s);
/* json_t path helpers: "metadata.name" -> borrowed value or NULL. */
json_t *api_get(const json_t *obj, const char *path);
const char *api_get_str(const json_t *obj, const char *path);
/* v in decimal (as "%" PRIu64 writes it) at the end of buf, NUL-terminated;
 * returns its first digit. For hot paths that would snprintf a number. */
const char *api_u64_text(uint64_t v, char buf[static 24]);
/* Length of the valid UTF-8 sequence at s (at most n bytes, n > 0), 0 if
 * invalid. Overlong forms, surrogates and code points past U+10FFFF are
 * invalid, as jansson would refuse them. */
size_t api_utf8_seq(const unsigned char *s, size_t n);
/* Set obj.path (creating objects on the way); steals v. */
int api_set(json_t *obj, const char *path, json_t *v);

/* --- registry hooks (appended by the registry/discovery/table developer) ---------
 * The resource table (registry.c) points at these. Defaulting and
 * validation are defined in admit.c; rows in table.c. */

/* defined in admit.c */
void api_default_pod(json_t *obj, const json_t *old);
void api_validate_pod(const json_t *obj, const json_t *old, struct api_error *e);
void api_default_deployment(json_t *obj, const json_t *old);
void api_validate_deployment(const json_t *obj, const json_t *old,
    struct api_error *e);
void api_default_replicaset(json_t *obj, const json_t *old);
void api_validate_replicaset(const json_t *obj, const json_t *old,
    struct api_error *e);
void api_default_service(json_t *obj, const json_t *old);
void api_validate_service(const json_t *obj, const json_t *old,
    struct api_error *e);
void api_default_namespace(json_t *obj, const json_t *old);
void api_validate_namespace(const json_t *obj, const json_t *old,
    struct api_error *e);
void api_validate_configmap(const json_t *obj, const json_t *old,
    struct api_error *e);
void api_default_secret(json_t *obj, const json_t *old);
void api_validate_secret(const json_t *obj, const json_t *old,
    struct api_error *e);
void api_validate_node(const json_t *obj, const json_t *old,
    struct api_error *e);
void api_validate_endpoints(const json_t *obj, const json_t *old,
    struct api_error *e);
void api_validate_endpointslice(const json_t *obj, const json_t *old,
    struct api_error *e);
void api_validate_lease(const json_t *obj, const json_t *old,
    struct api_error *e);
void api_validate_serviceaccount(const json_t *obj, const json_t *old,
    struct api_error *e);
void api_validate_event(const json_t *obj, const json_t *old,
    struct api_error *e);

/* defined in table.c: one api_row_fn per printer, cells in the order of
 * the resource's columns in registry.c */
void api_row_pod(const struct api_resource *r, const json_t *obj, json_t *cells);
void api_row_deployment(const struct api_resource *r, const json_t *obj,
    json_t *cells);
void api_row_replicaset(const struct api_resource *r, const json_t *obj,
    json_t *cells);
void api_row_service(const struct api_resource *r, const json_t *obj,
    json_t *cells);
void api_row_node(const struct api_resource *r, const json_t *obj, json_t *cells);
void api_row_namespace(const struct api_resource *r, const json_t *obj,
    json_t *cells);
void api_row_configmap(const struct api_resource *r, const json_t *obj,
    json_t *cells);
void api_row_secret(const struct api_resource *r, const json_t *obj,
    json_t *cells);
void api_row_serviceaccount(const struct api_resource *r, const json_t *obj,
    json_t *cells);
void api_row_endpoints(const struct api_resource *r, const json_t *obj,
    json_t *cells);
void api_row_endpointslice(const struct api_resource *r, const json_t *obj,
    json_t *cells);
void api_row_event(const struct api_resource *r, const json_t *obj,
    json_t *cells);
void api_row_lease(const struct api_resource *r, const json_t *obj, json_t *cells);

/* --- end of registry hooks --------------------------------------------------------- */

#endif
