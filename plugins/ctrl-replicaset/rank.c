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

/* < 0 when a should be deleted before b. */
static int cmp(const void *pa, const void *pb)
{
	const msgpack_object *a = ((const struct rsc_pod *)pa)->o;
	const msgpack_object *b = ((const struct rsc_pod *)pb)->o;
	if (assigned(a) != assigned(b))
		return assigned(a) ? 1 : -1;
	if (phase_rank(a) != phase_rank(b))
		return phase_rank(a) - phase_rank(b);
	bool ra = ctrl_pod_ready(a), rb = ctrl_pod_ready(b);
	if (ra != rb)
		return ra ? 1 : -1;
	if (ra && rb) {
		/* Ready for less time goes first. */
		int64_t ta = ctrl_pod_ready_since(a),
			tb = ctrl_pod_ready_since(b);
		if (ta != tb)
			return ta > tb ? -1 : 1;
	}
	int64_t xa = restarts(a), xb = restarts(b);
	if (xa != xb)
		return xa > xb ? -1 : 1;
	int64_t ca = ctrl_parse_time(a, "metadata.creationTimestamp");
	int64_t cb = ctrl_parse_time(b, "metadata.creationTimestamp");
	if (ca != cb)
		return ca > cb ? -1 : 1;
	/* Created in the same second: the later resourceVersion first. */
	const char *na = "", *nb = "";
	size_t la = 0, lb = 0;
	kb_mp_str(a, "metadata.resourceVersion", &na, &la);
	kb_mp_str(b, "metadata.resourceVersion", &nb, &lb);
	if (la != lb)
		return la > lb ? -1 : 1;
	return -memcmp(na, nb, la);
}

void rsc_rank_for_deletion(struct rsc_pod *pods, size_t n)
{
	qsort(pods, n, sizeof(*pods), cmp);
}
