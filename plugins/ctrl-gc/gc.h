/* plugins/ctrl-gc/gc.h — the garbage collector's state and what its
 * files share.
 *
 * Every resource is watched; an index maps each owner uid to the keys of
 * its dependents. A key "<resource index>|<namespace>|<name>" names one
 * object, which the reconcile looks at in both roles: as an owner being
 * deleted with the orphan or foregroundDeletion finalizer, and as a
 * dependent whose owners may be gone. */
#ifndef KUBUS_CTRL_GC_H
#define KUBUS_CTRL_GC_H

#include "ctrl.h"

struct gc_res {
	const struct kb_gvr *gvr;
	const char *group; /* of apiVersion in ownerReferences: "" or "apps" … */
	const char *kind;
	bool namespaced;
};

extern const struct gc_res gc_res[];
extern const size_t gc_nres;

struct gc_cfg {
	struct ctrl_conf ctl;
};

struct gc_index;

struct gc {
	struct ctrl c;
	struct gc_cfg cfg;
	struct kb_informer *inf[CTRL_MAX_INFORMERS];
	struct gc_index *idx;
};

/* The reconcile of one key (a ctrl_sync_fn). */
int gc_sync(void *arg, const char *key);

/* "<i>|<ns>|<name>" of an object of resource i, into buf. */
bool gc_key(size_t i, const msgpack_object *obj, char *buf, size_t len);
/* The cached object of a key (a new reference) and its resource index. */
kb_body *gc_lookup(struct gc *g, const char *key, size_t *res);
/* The resource of an ownerReference (apiVersion + kind), or -1. */
int gc_res_of_ref(const msgpack_object *ref);

/* --- the owner index (index.c); thread-safe ----------------------------------- */
struct gc_index *gc_index_new(void);
void gc_index_free(struct gc_index *x);
/* Record (add) or forget key as a dependent of each uid in obj's refs. */
void gc_index_update(struct gc_index *x, const char *key,
    const msgpack_object *obj, bool add);
/* The dependents of uid: a malloc'd array of malloc'd keys (*n of them). */
char **gc_index_dependents(struct gc_index *x, const char *uid, size_t uidlen,
    size_t *n);
void gc_keys_free(char **keys, size_t n);

#endif
