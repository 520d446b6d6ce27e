/* plugins/apiserver/admit.h — admission's internal contracts.
 *
 * Admission (defaulting, validation, the decode checks Kubernetes does
 * while reading a body) is split by job:
 *
 *   admit.c           api_admit(): the order of the steps, per-kind hooks
 *   admit_cause.c     causes with Kubernetes' wording (field.Error bodies)
 *   admit_names.c     name, label, key and port syntax checks
 *   admit_meta.c      ObjectMeta on create and update, label selectors
 *   admit_quantity.c  resource.Quantity parsing, comparing, canonical text
 *   admit_pod_def.c   Pod and PodSpec defaults (SetDefaults_* and the
 *                     ServiceAccount/Priority/DefaultTolerationSeconds
 *                     admission plugins)
 *   admit_pod.c       PodSpec: container lists, spec-wide fields
 *   admit_container.c one container: ports, env, mounts, policies
 *   admit_pod_vol.c   volumes and their sources
 *   admit_probe.c     probes and lifecycle handlers
 *   admit_resources.c resource requirements
 *   admit_security.c  security contexts
 *   admit_sched.c     tolerations and affinity
 *   admit_pod_obj.c   Pod create and update rules, pod templates
 *   admit_apps.c      Deployment and ReplicaSet
 *   admit_service.c   Service
 *   admit_misc.c      Namespace, ConfigMap, Secret, ServiceAccount
 *   admit_base64.c    []byte fields as Go decodes them
 *   admit_infra.c     Node, Endpoints, EndpointSlice, Lease, Event
 *   admit_schema*.c   the known fields and Go types of each built-in kind
 *   admit_fields.c    walking a body against its schema: unknown fields,
 *                     type errors, pruning, quantity normalising
 *
 * Everything here is private to the API server plugin (adm_ prefix).
 * Paths are Kubernetes field paths ("spec.containers[0].image"); they are
 * built in caller-owned buffers of ADM_PATH bytes.
 */
#ifndef KUBUS_APISERVER_ADMIT_H
#define KUBUS_APISERVER_ADMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "api.h"

/* --- registry hooks: declared in api.h's "registry hooks" block. ---------------
 * Defaults Kubernetes has for kinds the registry names no default hook
 * for; api_admit() applies them by kind when r->defaults is NULL. */
void api_default_endpoints(json_t *obj, const json_t *old);
void api_default_endpointslice(json_t *obj, const json_t *old);
void api_default_node(json_t *obj, const json_t *old);

/* --- paths ---------------------------------------------------------------- */

#define ADM_PATH 512

/* printf into a path buffer (truncates silently; paths are short). */
const char *adm_path(char *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* --- causes (admit_cause.c) ---------------------------------------------------
 * Each adds one details.causes entry whose message is field.Error's
 * ErrorBody(): "Invalid value: <value>: <detail>", "Required value", … */

void adm_required(struct api_error *e, const char *path, const char *detail);
void adm_forbidden(struct api_error *e, const char *path, const char *detail);
void adm_invalid_str(struct api_error *e, const char *path, const char *v,
    const char *detail);
void adm_invalid_int(struct api_error *e, const char *path, long long v,
    const char *detail);
/* v rendered as Go's json.Marshal would (NULL renders "null"). */
void adm_invalid_json(struct api_error *e, const char *path, const json_t *v,
    const char *detail);
/* v already rendered. */
void adm_invalid_raw(struct api_error *e, const char *path, const char *v,
    const char *detail);
/* supported: NULL-terminated, in the order Kubernetes lists them. */
void adm_unsupported(struct api_error *e, const char *path, const char *v,
    const char *const *supported);
void adm_unsupported_raw(struct api_error *e, const char *path, const char *v,
    const char *const *supported);
void adm_duplicate_str(struct api_error *e, const char *path, const char *v);
void adm_duplicate_raw(struct api_error *e, const char *path, const char *v);
void adm_notfound_str(struct api_error *e, const char *path, const char *v);
void adm_toolong(struct api_error *e, const char *path, long long max);
void adm_toomany(struct api_error *e, const char *path, long long actual,
    long long max);
/* The 400 a decoding failure gives: "<Kind> in version \"v1\" cannot be
 * handled as a <Kind>: <msg>". Only the first such error counts. */
void adm_bad_request(struct api_error *e, const char *kind, const char *version,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Go's strconv.Quote (malloc'd). */
char *adm_quote(const char *s);
/* Compact JSON with sorted keys, as json.Marshal writes maps (malloc'd). */
char *adm_render(const json_t *v);
/* Go's rendering of a LabelSelector (matchLabels first). */
char *adm_render_selector(const json_t *sel);

/* --- messages from syntax checks (admit_names.c) --------------------------- */

#define ADM_MSGS 4
struct adm_msgs {
	int n;
	char m[ADM_MSGS][400];
};

typedef void (*adm_name_fn)(const char *s, bool prefix, struct adm_msgs *out);

void adm_msgs_add(struct adm_msgs *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* One Invalid cause per message, all at path with value v. */
void adm_invalid_msgs(struct api_error *e, const char *path, const char *v,
    const struct adm_msgs *m);

void adm_qualified_name(const char *s, struct adm_msgs *out);
void adm_label_value(const char *s, struct adm_msgs *out);
void adm_dns1123_label(const char *s, struct adm_msgs *out);
void adm_dns1123_subdomain(const char *s, struct adm_msgs *out);
void adm_dns1035_label(const char *s, struct adm_msgs *out);
void adm_config_key(const char *s, struct adm_msgs *out);
void adm_port_name(const char *s, struct adm_msgs *out);
void adm_env_name(const char *s, struct adm_msgs *out);
void adm_percent(const char *s, struct adm_msgs *out);
/* The ValidateNameFuncs: prefix means a generateName (a trailing '-' is
 * fine). */
void adm_name_subdomain(const char *s, bool prefix, struct adm_msgs *out);
void adm_name_label(const char *s, bool prefix, struct adm_msgs *out);
void adm_name_1035(const char *s, bool prefix, struct adm_msgs *out);

/* IP addresses: 4 = IPv4, 6 = IPv6, 0 = not an IP (Go's ParseIP, which
 * also takes IPv4 with leading zeros as Kubernetes' sloppy parser does). */
int adm_ip_family(const char *s);
/* validation.IsValidIP as a cause. */
void adm_valid_ip(struct api_error *e, const char *path, const char *s);
/* ValidateNonSpecialIP: not unspecified, loopback or link-local. */
void adm_non_special_ip(struct api_error *e, const char *path, const char *s);
void adm_valid_cidr(struct api_error *e, const char *path, const char *s);

/* --- metadata and labels (admit_meta.c) ------------------------------------ */

void adm_meta(const json_t *obj, bool namespaced, adm_name_fn fn,
    struct api_error *e);
void adm_meta_update(const json_t *obj, const json_t *old, struct api_error *e);
void adm_labels(const json_t *labels, const char *path, struct api_error *e);
void adm_annotations(const json_t *ann, const char *path, struct api_error *e);
/* ValidateLabelName: a qualified name. */
void adm_label_name(const char *key, const char *path, struct api_error *e);
void adm_label_selector(const json_t *sel, const char *path,
    struct api_error *e);
/* Does a LabelSelector select these labels? empty: has no requirements. */
bool adm_selector_matches(const json_t *sel, const json_t *labels);
bool adm_selector_empty(const json_t *sel);
/* field is immutable (ValidateImmutableField) with v rendered as JSON. */
void adm_immutable(struct api_error *e, const char *path, const json_t *now,
    const json_t *was);
void adm_nonneg(struct api_error *e, const char *path, const json_t *v);

/* --- quantities (admit_quantity.c) ------------------------------------------ */

enum adm_qfmt {
	ADM_Q_DECSI,
	ADM_Q_BINSI,
	ADM_Q_DECEXP
};

struct adm_qty {
	__int128 nanos; /* the value in units of 1e-9, rounded up */
	int fmt;        /* enum adm_qfmt */
	int scale;      /* power of ten of the written form's last digit */
	char orig[64];  /* the written form when Kubernetes keeps it */
};

#define ADM_QTY_FORMAT                                                         \
	"quantities must match the regular expression "                        \
	"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
#define ADM_QTY_SUFFIX "unable to parse quantity's suffix"

/* 0, or the error text Kubernetes gives (ADM_QTY_FORMAT / ADM_QTY_SUFFIX). */
const char *adm_qty_parse(const char *s, struct adm_qty *q);
/* From a JSON string or number. */
const char *adm_qty_json(const json_t *v, struct adm_qty *q);
void adm_qty_text(const struct adm_qty *q, char *buf, size_t len);
int adm_qty_cmp(const struct adm_qty *a, const struct adm_qty *b);
int adm_qty_sign(const struct adm_qty *q);
bool adm_qty_is_int(const struct adm_qty *q);
/* Round up to milli precision (SetDefaults_ResourceList). */
void adm_qty_round_milli(struct adm_qty *q);

/* --- pod specs (admit_pod*.c) --------------------------------------------- */

struct adm_podctx {
	bool is_pod;     /* a Pod, not a template */
	json_t *volumes; /* name -> volume, for mounts (owned) */
	bool have_grace; /* terminationGracePeriodSeconds, for sleeps */
	long long grace;
};

/* SetDefaults_PodSpec and what it calls (containers, probes, volumes),
 * for pods and templates alike. */
void adm_podspec_defaults(json_t *spec);
/* The priority of a PriorityClass: the built-in system classes, else 0
 * (Kubus has no PriorityClass objects). */
long long adm_class_priority(const char *name);
/* ValidatePodSpec at path; is_pod for a Pod rather than a template. */
void adm_podspec_validate(const json_t *spec, const char *path, bool is_pod,
    struct api_error *e);
void adm_template_defaults(json_t *tmpl);
/* ValidatePodTemplateSpec at path ("spec.template"). */
void adm_template_validate(const json_t *tmpl, const char *path,
    struct api_error *e);
void adm_pod_annotations(const json_t *ann, const json_t *spec,
    const char *path, struct api_error *e);

void adm_volumes_validate(const json_t *vols, struct adm_podctx *c,
    const char *path, struct api_error *e);
void adm_container_common(const json_t *c, struct adm_podctx *ctx,
    const char *path, struct api_error *e);
/* Host ports must not collide: "<protocol>/<hostIP>/<port>" in seen. */
void adm_host_ports(const json_t *cs, const char *path, json_t *seen,
    struct api_error *e);
/* Required value at path.key when obj.key is empty. */
void adm_required_field(const json_t *o, const char *key, const char *path,
    struct api_error *e);
void adm_probe_validate(const json_t *probe, const char *path, int kind,
    struct adm_podctx *c, struct api_error *e);
void adm_lifecycle_validate(const json_t *lc, const char *path,
    struct adm_podctx *c, struct api_error *e);
void adm_resources_validate(const json_t *res, const char *path,
    struct api_error *e);
void adm_security_validate(const json_t *sc, const char *path,
    struct api_error *e);
/* spec.securityContext, with the spec for hostPID. */
void adm_pod_security_validate(const json_t *spec, const char *path,
    struct api_error *e);
void adm_tolerations_validate(const json_t *tols, const char *path,
    struct api_error *e);
void adm_affinity_validate(const json_t *aff, const char *path,
    struct api_error *e);
void adm_port_num_or_name(const json_t *port, const char *path,
    struct api_error *e);
void adm_taint_effect(const char *effect, bool allow_empty, const char *path,
    struct api_error *e);
/* validateLocalDescendingPath (ValidateLocalNonReservedPath when
 * nonreserved). */
void adm_local_path(const char *s, const char *path, bool nonreserved,
    struct api_error *e);
/* An ObjectFieldSelector against the supported paths (sorted). */
void adm_field_ref(const json_t *fs, const char *path, const char *const *exprs,
    struct api_error *e);
void adm_resource_field_ref(const json_t *r, const char *path, bool volume,
    struct api_error *e);
/* A ResourceList's values: quantities rounded to milli, in canonical text. */
void adm_resource_list_defaults(json_t *list);

enum {
	ADM_PROBE_LIVENESS,
	ADM_PROBE_READINESS,
	ADM_PROBE_STARTUP
};

/* --- schema (admit_schema*.c, admit_fields.c) ------------------------------ */

enum adm_sk {
	ADM_S_STR,
	ADM_S_I32,
	ADM_S_I64,
	ADM_S_BOOL,
	ADM_S_F64,
	ADM_S_QTY,
	ADM_S_INTSTR,
	ADM_S_TIME,
	ADM_S_MTIME,
	ADM_S_BYTES,
	ADM_S_OBJ,
	ADM_S_ANY,
};
enum adm_shape {
	ADM_ONE,
	ADM_LIST,
	ADM_MAP
};

struct adm_stype;
struct adm_sfield {
	const char *name;
	unsigned char kind;           /* enum adm_sk */
	unsigned char shape;          /* enum adm_shape */
	const struct adm_stype *type; /* ADM_S_OBJ */
	const char *gotype; /* a named Go type for error text, or NULL */
};
struct adm_stype {
	const char *go;                  /* Go struct name: "PodSpec" */
	const struct adm_sfield *fields; /* ends with a NULL name */
};

/* Building schemas: a field of kind k, a list or map of them, an object
 * field of type t, a list of objects, a ResourceList. */
#define ADM_F(n, k)                                                            \
	{                                                                      \
		n, ADM_S_##k, ADM_ONE, NULL, NULL                              \
	}
#define ADM_FT(n, k, go)                                                       \
	{                                                                      \
		n, ADM_S_##k, ADM_ONE, NULL, go                                \
	}
#define ADM_L(n, k)                                                            \
	{                                                                      \
		n, ADM_S_##k, ADM_LIST, NULL, NULL                             \
	}
#define ADM_M(n, k)                                                            \
	{                                                                      \
		n, ADM_S_##k, ADM_MAP, NULL, NULL                              \
	}
#define ADM_O(n, t)                                                            \
	{                                                                      \
		n, ADM_S_OBJ, ADM_ONE, &t, NULL                                \
	}
#define ADM_LO(n, t)                                                           \
	{                                                                      \
		n, ADM_S_OBJ, ADM_LIST, &t, NULL                               \
	}
#define ADM_RL(n)                                                              \
	{                                                                      \
		n, ADM_S_QTY, ADM_MAP, NULL, "v1.ResourceList"                 \
	}
#define ADM_END                                                                \
	{                                                                      \
		NULL, 0, 0, NULL, NULL                                         \
	}
#define ADM_TYPE(var, go, ...)                                                 \
	static const struct adm_sfield var##_f[] = { __VA_ARGS__, ADM_END };   \
	static const struct adm_stype var = { go, var##_f }
#define ADM_XTYPE(var, go, ...)                                                \
	static const struct adm_sfield var##_f[] = { __VA_ARGS__, ADM_END };   \
	const struct adm_stype var = { go, var##_f }

/* The schema of a kind by group and kind ("" for core), or NULL. */
const struct adm_stype *adm_schema(const char *group, const char *kind);

/* Shared types (admit_schema_core.c). */
extern const struct adm_stype adm_t_objectmeta, adm_t_labelselector,
    adm_t_objectreference, adm_t_localobjectref, adm_t_condition, adm_t_podspec,
    adm_t_podstatus, adm_t_podtemplatespec;

/* Unknown field paths of obj (strict decoding), appended to out (array of
 * strings). */
void adm_unknown_fields(const struct adm_stype *t, const json_t *obj,
    json_t *out);
/* obj has no unknown fields and adm_decode would take it (obj untouched:
 * the same walk, reporting without decoding). */
bool adm_decodable(const struct adm_stype *t, const json_t *obj);
/* s (n bytes) is a metav1.Time as decoding writes one back, unchanged:
 * "2006-01-02T15:04:05Z", a real date. */
bool adm_canonical_time(const char *s, size_t n);
/* What decoding into Go types does: type errors (the first, as text in
 * err), null and unknown fields dropped, quantities in canonical text.
 * false with err set on a type error. */
bool adm_decode(const struct adm_stype *t, json_t *obj, char *err,
    size_t errlen);

/* --- base64 (admit_base64.c) ------------------------------------------------ */

/* Decode as Go's base64.StdEncoding: the length (bytes written to out
 * when out is not NULL; out needs strlen(s) bytes), or -1 with *bad the
 * offset Go's CorruptInputError reports. */
long adm_base64_decode(const char *s, unsigned char *out, long *bad);

/* --- small JSON helpers (admit_cause.c) ------------------------------------ */

/* obj.key as a string, or NULL (also when not a string). */
const char *adm_str(const json_t *obj, const char *key);
/* obj.key as an integer into *v; false when absent or not an integer. */
bool adm_int(const json_t *obj, const char *key, long long *v);
bool adm_bool(const json_t *obj, const char *key);
/* obj.key when it is an object/array, else NULL. */
json_t *adm_obj(const json_t *obj, const char *key);
json_t *adm_arr(const json_t *obj, const char *key);
/* obj.key, creating an empty object when absent or not an object. */
json_t *adm_obj_make(json_t *obj, const char *key);
/* Set obj.key when absent (or null): steals v either way. */
void adm_default(json_t *obj, const char *key, json_t *v);
/* Set a string field that is absent, null or "" (Go's zero string). */
void adm_default_str(json_t *obj, const char *key, const char *v);
bool adm_is_empty(const char *s);
/* Is s one of the NULL-terminated list? */
bool adm_in_list(const char *s, const char *const *list);
/* Deep equality where absent, null, "" , 0, false, {} and [] match, as
 * Go's comparison of decoded zero values does. */
bool adm_equal(const json_t *a, const json_t *b);

#endif
