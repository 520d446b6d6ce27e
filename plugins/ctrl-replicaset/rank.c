/* plugins/ctrl-replicaset/rank.c — which pods a scale-down deletes first,
 * as Kubernetes' controller.ActivePods ordering. */
#include <stdlib.h>
#include <string.h>

#include "rsc.h"

static int phase_rank(const msgpack_object *p)
{
	if (kb_mp_streq(p, "status.phase", "Pending"))
		return 0;
	if (kb_mp_streq(p, "status.phase", "Unknown"))
		return 1;
	if (kb_mp_streq(p, "status.phase", "Running"))
		return 2;
	return 0; /* no phase yet: as Pending */
}

static int64_t restarts(const msgpack_object *p)
{
	const msgpack_object *cs = kb_mp_get(p, "status.containerStatuses");
	int64_t n = 0, r;
	for (uint32_t i = 0;
	     cs && cs->type == MSGPACK_OBJECT_ARRAY && i < cs->via.array.size;
	     i++)
		if (kb_mp_int(&cs->via.array.ptr[i], "restartCount", &r))
			n += r;
	return n;
}

static bool assigned(const msgpack_object *p)
{
	const char *s;
	size_t len;
	return kb_mp_str(p, "spec.nodeName", &s, &len) && len > 0;
}

/* What the ordering looks at, read once per pod version (in its view):
 * comparing parsed the timestamps again at every one of qsort's n log n
 * comparisons (1.5 % of bench-deploy's CPU), and reading them at every
 * scale-down read each pod's maps again. */
void rsc_rank_read(const msgpack_object *p, struct rsc_rank *k)
{
	k->assigned = assigned(p);
	k->phase = phase_rank(p);
	k->ready = ctrl_pod_ready(p);
	k->ready_since = k->ready ? ctrl_pod_ready_since(p) : 0;
	k->restarts = restarts(p);
	k->created = ctrl_parse_time(p, "metadata.creationTimestamp");
	k->rv = "";
	k->rvlen = 0;
	kb_mp_str(p, "metadata.resourceVersion", &k->rv, &k->rvlen);
}

/* < 0 when a should be deleted before b. */
static int cmp(const void *pa, const void *pb)
{
	const struct rsc_rank *a = &((const struct rsc_pod *)pa)->k,
			      *b = &((const struct rsc_pod *)pb)->k;
	if (a->assigned != b->assigned)
		return a->assigned ? 1 : -1;
	if (a->phase != b->phase)
		return a->phase - b->phase;
	if (a->ready != b->ready)
		return a->ready ? 1 : -1;
	/* Both ready: ready for less time goes first. */
	if (a->ready && a->ready_since != b->ready_since)
		return a->ready_since > b->ready_since ? -1 : 1;
	if (a->restarts != b->restarts)
		return a->restarts > b->restarts ? -1 : 1;
	if (a->created != b->created)
		return a->created > b->created ? -1 : 1;
	/* Created in the same second: the later resourceVersion first. */
	if (a->rvlen != b->rvlen)
		return a->rvlen > b->rvlen ? -1 : 1;
	return -memcmp(a->rv, b->rv, a->rvlen);
}

void rsc_rank_for_deletion(struct rsc_pod *pods, size_t n)
{
	if (n > 1)
		qsort(pods, n, sizeof(*pods), cmp);
}
