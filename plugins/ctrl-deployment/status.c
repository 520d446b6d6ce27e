/* plugins/ctrl-deployment/status.c — Deployment status: the counts summed
 * over its ReplicaSets and the Available and Progressing conditions that
 * `kubectl rollout status` reads (Kubernetes' sync.go and progress.go). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc.h"

struct cond {
	const char *type, *status, *reason;
	char message[400];
	char last_update[40], last_transition[40];
};

static const msgpack_object *find_cond(const msgpack_object *dep,
    const char *type)
{
	const msgpack_object *cs = kb_mp_get(dep, "status.conditions");
	for (uint32_t i = 0;
	     cs && cs->type == MSGPACK_OBJECT_ARRAY && i < cs->via.array.size;
	     i++)
		if (kb_mp_streq(&cs->via.array.ptr[i], "type", type))
			return &cs->via.array.ptr[i];
	return NULL;
}

static void copy_str(const msgpack_object *o, const char *path, char *buf,
    size_t len)
{
	const char *s;
	size_t l;
	buf[0] = '\0';
	if (kb_mp_str(o, path, &s, &l))
		snprintf(buf, len, "%.*s", (int)l, s);
}

/* Keep the times of an unchanged condition; a changed status gets a new
 * transition time, a changed reason or message a new update time. */
static bool settle(const msgpack_object *dep, struct cond *c, const char *now,
    bool progressed)
{
	const msgpack_object *old = find_cond(dep, c->type);
	bool same_status = old && kb_mp_streq(old, "status", c->status);
	bool same = same_status && kb_mp_streq(old, "reason", c->reason) &&
	    kb_mp_streq(old, "message", c->message);
	if (same_status)
		copy_str(old, "lastTransitionTime", c->last_transition,
		    sizeof(c->last_transition));
	else
		snprintf(c->last_transition, sizeof(c->last_transition), "%s",
		    now);
	if (same && !progressed)
		copy_str(old, "lastUpdateTime", c->last_update,
		    sizeof(c->last_update));
	else
		snprintf(c->last_update, sizeof(c->last_update), "%s", now);
	return !same || progressed;
}

static void pack_cond(msgpack_packer *pk, const struct cond *c)
{
	kb_mp_pack(pk, "{s:s, s:s, s:s, s:s, s:s, s:s}", "type", c->type,
	    "status", c->status, "reason", c->reason, "message", c->message,
	    "lastUpdateTime",
	    c->last_update[0] ? c->last_update : c->last_transition,
	    "lastTransitionTime", c->last_transition);
}

static bool int_is(const msgpack_object *o, const char *path, int64_t want)
{
	int64_t v = 0;
	if (!kb_mp_int(o, path, &v))
		return false;
	return v == want;
}

int dc_status(struct dc *d, const msgpack_object *dep, struct dc_set *set,
    int64_t *requeue_ms)
{
	int64_t want = 1, gen = 0, surge, unavail, deadline_s = 600;
	kb_mp_int(dep, "spec.replicas", &want);
	kb_mp_int(dep, "metadata.generation", &gen);
	kb_mp_int(dep, "spec.progressDeadlineSeconds", &deadline_s);
	dc_max_surge_unavailable(dep, want, &surge, &unavail);
	int64_t replicas = 0, ready = 0, avail = 0, spec_total = 0, updated = 0;
	for (size_t i = 0; i < set->n; i++) {
		int64_t v = 0;
		const msgpack_object *o = set->v[i].o;
		if (kb_mp_int(o, "status.replicas", &v))
			replicas += v;
		v = 0;
		if (kb_mp_int(o, "status.readyReplicas", &v))
			ready += v;
		v = 0;
		if (kb_mp_int(o, "status.availableReplicas", &v))
			avail += v;
		spec_total += set->v[i].replicas;
	}
	if (set->cur)
		kb_mp_int(set->cur->o, "status.replicas", &updated);
	int64_t unavailable = spec_total - avail;
	if (unavailable < 0)
		unavailable = 0;
	bool paused = false;
	kb_mp_bool(dep, "spec.paused", &paused);

	/* progress: any count moved since the last status */
	bool progressed = !int_is(dep, "status.replicas", replicas) ||
	    !int_is(dep, "status.updatedReplicas", updated) ||
	    !int_is(dep, "status.readyReplicas", ready) ||
	    !int_is(dep, "status.availableReplicas", avail);
	char now[40];
	int64_t now_ms = ctrl_now_ms();
	ctrl_format_time(now_ms, now, sizeof(now));
	char rsname[256] = "";
	if (set->cur)
		copy_str(set->cur->o, "metadata.name", rsname, sizeof(rsname));

	struct cond av = { .type = "Available" };
	if (avail >= want - unavail) {
		av.status = "True";
		av.reason = "MinimumReplicasAvailable";
		snprintf(av.message, sizeof(av.message),
		    "Deployment has minimum availability.");
	} else {
		av.status = "False";
		av.reason = "MinimumReplicasUnavailable";
		snprintf(av.message, sizeof(av.message),
		    "Deployment does not have minimum availability.");
	}
	bool changed = settle(dep, &av, now, false);

	struct cond pr = { .type = "Progressing" };
	bool complete = set->cur && updated == want && replicas == want &&
	    avail == want;
	const msgpack_object *oldp = find_cond(dep, "Progressing");
	if (paused) {
		pr.status = "Unknown";
		pr.reason = "DeploymentPaused";
		snprintf(pr.message, sizeof(pr.message),
		    "Deployment is paused");
		changed |= settle(dep, &pr, now, false);
	} else if (complete) {
		pr.status = "True";
		pr.reason = "NewReplicaSetAvailable";
		snprintf(pr.message, sizeof(pr.message),
		    "ReplicaSet \"%s\" has successfully progressed.", rsname);
		changed |= settle(dep, &pr, now, false);
	} else {
		int64_t last = oldp ? ctrl_parse_time(oldp, "lastUpdateTime") :
				      -1;
		bool was_timed_out = oldp &&
		    kb_mp_streq(oldp, "reason", "ProgressDeadlineExceeded");
		bool resumed = oldp &&
		    kb_mp_streq(oldp, "reason", "DeploymentPaused");
		bool timing = oldp &&
		    (kb_mp_streq(oldp, "reason", "ReplicaSetUpdated") ||
			kb_mp_streq(oldp, "reason", "DeploymentResumed"));
		if (resumed && !progressed) {
			/* as checkPausedConditions: the deadline counts from
			 * here */
			pr.status = "Unknown";
			pr.reason = "DeploymentResumed";
			snprintf(pr.message, sizeof(pr.message),
			    "Deployment is resumed");
			changed |= settle(dep, &pr, now, false);
			*requeue_ms = deadline_s * 1000 + 100;
		} else if (!progressed &&
		    (was_timed_out ||
			(last >= 0 && last + deadline_s * 1000 <= now_ms &&
			    timing))) {
			pr.status = "False";
			pr.reason = "ProgressDeadlineExceeded";
			snprintf(pr.message, sizeof(pr.message),
			    "ReplicaSet \"%s\" has timed out progressing.",
			    rsname);
			changed |= settle(dep, &pr, now, false);
		} else {
			pr.status = "True";
			pr.reason = "ReplicaSetUpdated";
			snprintf(pr.message, sizeof(pr.message),
			    "ReplicaSet \"%s\" is progressing.", rsname);
			changed |= settle(dep, &pr, now, progressed);
			int64_t left = deadline_s * 1000 -
			    (now_ms -
				(ctrl_parse_time(oldp, "lastUpdateTime") >= 0 &&
					    !progressed ?
					ctrl_parse_time(oldp,
					    "lastUpdateTime") :
					now_ms));
			*requeue_ms = (left > 0 ? left : 0) + 100;
		}
	}
	if (!changed && !progressed &&
	    int_is(dep, "status.observedGeneration", gen) &&
	    int_is(dep, "status.unavailableReplicas", unavailable))
		return 0;

	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	int64_t coll = 0;
	bool has_coll = kb_mp_int(dep, "status.collisionCount", &coll);
	msgpack_pack_map(&pk, 7 + has_coll);
	kb_mp_pack(&pk, "s:I, s:I, s:I, s:I, s:I, s:I", "observedGeneration",
	    gen, "replicas", replicas, "updatedReplicas", updated,
	    "readyReplicas", ready, "availableReplicas", avail,
	    "unavailableReplicas", unavailable);
	kb_mp_pack_cstr(&pk, "conditions");
	msgpack_pack_array(&pk, 2);
	pack_cond(&pk, &av);
	pack_cond(&pk, &pr);
	if (has_coll) {
		kb_mp_pack_cstr(&pk, "collisionCount");
		msgpack_pack_int64(&pk, coll);
	}
	kb_body *b = ctrl_obj_set(dep, "status", sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	if (b == NULL)
		return KB_ENOMEM;
	char *ns = kb_mp_strdup(dep, "metadata.namespace");
	char *name = kb_mp_strdup(dep, "metadata.name");
	kb_msg *rep = NULL;
	int rc = kb_api_update(d->c.ctx, &KB_GVR_DEPLOYMENTS, ns, name,
	    "status", b, &rep);
	if (rc) {
		const char *why = "";
		if (rep)
			kb_msg_err(rep, &why);
		kb_debug(d->c.ctx, "status not written",
		    "deployment=%s/%s err=%s message=\"%s\"", ns, name,
		    kb_err_reason(rc), why);
	}
	kb_msg_free(rep);
	free(ns);
	free(name);
	return rc == KB_ENOTFOUND ? 0 : rc;
}
