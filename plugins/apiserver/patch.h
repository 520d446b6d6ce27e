/* plugins/apiserver/patch.h — private to patch.c, patch_smp.c and
 * patch_keys.c: the strategic-merge schema and the shared error helpers.
 *
 * The schema is Kubernetes' patchStrategy/patchMergeKey struct tags for the
 * built-in kinds, as a small type graph: a type names the fields whose
 * patch behaviour differs from the default (maps merge, lists replace) and
 * the types found under them. Fields a type does not name take the default.
 */
#ifndef KUBUS_APISERVER_PATCH_H
#define KUBUS_APISERVER_PATCH_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "api.h"

enum smp_strategy {
	SMP_DEFAULT = 0, /* maps merge, lists are atomic */
	SMP_MERGE,       /* lists: merged by merge_key, or a set of scalars */
	SMP_REPLACE,     /* maps: replaced whole */
};

struct smp_type;

struct smp_field {
	const char *name;
	enum smp_strategy strategy;
	/* Kubernetes' "retainKeys" strategy: only clients act on it (they
	 * send $retainKeys); the server honours $retainKeys wherever it is. */
	bool retain_keys;
	const char *merge_key;       /* NULL: a list of scalars */
	const struct smp_type *type; /* of the value, or of a list element */
};

struct smp_type {
	const char *name;               /* Go type name, for messages */
	const struct smp_field *fields; /* terminated by a NULL name */
};

/* patch_keys.c: the root type of a kind ("Pod", "Deployment", …); for
 * other kinds (and NULL) an object whose only tagged part is metadata. */
const struct smp_type *smp_kind_type(const char *kind);
/* The field `name` of t, or NULL (default behaviour). t may be NULL. */
const struct smp_field *smp_type_field(const struct smp_type *t,
    const char *name);

/* patch_smp.c: strategic merge of patch (an object) into a copy of obj
 * (NULL: into {}). New reference sharing nothing with either, or NULL
 * with e set. */
json_t *smp_patch(const struct smp_type *t, const json_t *obj,
    const json_t *patch, struct api_error *e);

/* The 422 message for a patch Kubernetes cannot apply (it drops the
 * detail; kubectl shows "The request is invalid: <this>"). */
#define PATCH_REJECTED                                                         \
	"the server rejected our request due to an error in our request"

/* patch.c: errors as Kubernetes words them. */
void patch_fail(struct api_error *e, int code, const char *reason,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Go's name for the type a JSON value decodes to ("map[string]interface
 * {}", "[]interface {}", "string", "int64", "float64", "bool", "<nil>"). */
const char *patch_go_type(const json_t *v);
/* JSON's name for it as encoding/json says "cannot unmarshal X": "object",
 * "array", "string", "number", "bool", "null". */
const char *patch_json_kind(const json_t *v);
/* v as Go's fmt %v prints the decoded value (map[k:v …], [a b]), into
 * buf (NUL-terminated, truncated to len); returns buf. */
char *patch_go_fmt(const json_t *v, char *buf, size_t len);

#endif
