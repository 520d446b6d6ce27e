/* plugins/ctrl-replicaset/podview.c — what a reconcile reads of a pod,
 * read once per version of it: the pods informer's view, and its index
 * key. A reconcile passes over every pod of its ReplicaSet and the
 * namespace's orphans; looking each field up in the pod's maps at every
 * pass was most of the controller's CPU. */
#include <string.h>

#include "rsc.h"

static bool str_is(const msgpack_object *o, const char *s, size_t len)
{
	return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == len &&
	    !memcmp(o->via.str.ptr, s, len);
}

/* A string's bytes into *s, *len; NULL and 0 when o is not a string. */
static void str_of(const msgpack_object *o, const char **s, size_t *len)
{
	bool ok = o && o->type == MSGPACK_OBJECT_STR;
	*s = ok ? o->via.str.ptr : NULL;
	*len = ok ? o->via.str.size : 0;
}

void rsc_pod_view(const msgpack_object *pod, void *view)
{
	struct rsc_podv *v = view;
	memset(v, 0, sizeof(*v));
	v->md = kb_mp_key(pod, "metadata");
	v->ctl_ref = ctrl_controller_ref(pod);
	str_of(kb_mp_key(v->md, "namespace"), &v->ns, &v->nslen);
	str_of(kb_mp_key(v->md, "name"), &v->name, &v->namelen);
	if (v->ctl_ref)
		str_of(kb_mp_key(v->ctl_ref, "uid"), &v->ctl_uid,
		    &v->ctl_uidlen);
	v->labels = kb_mp_key(v->md, "labels");
	const msgpack_object *d = kb_mp_key(v->md, "deletionTimestamp");
	v->deleting = d && d->type != MSGPACK_OBJECT_NIL;
	const msgpack_object *ph = kb_mp_get(pod, "status.phase");
	v->terminal = str_is(ph, "Succeeded", 9) || str_is(ph, "Failed", 6);
	rsc_rank_read(pod, &v->rank);
}

bool rsc_pod_index(const msgpack_object *pod, char *buf, size_t len)
{
	const msgpack_object *ref = ctrl_controller_ref(pod);
	const char *s;
	size_t n;
	bool owned = ref != NULL;
	if (owned ? !kb_mp_str(ref, "uid", &s, &n) :
		    !kb_mp_str(kb_mp_key(pod, "metadata"), "namespace", &s, &n))
		return false;
	if (n + 3 > len)
		return false;
	buf[0] = owned ? 'u' : 'o';
	buf[1] = '/';
	memcpy(buf + 2, s, n);
	buf[n + 2] = '\0';
	return true;
}
