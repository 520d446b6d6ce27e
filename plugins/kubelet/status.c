/* plugins/kubelet/status.c — the pod's status as the kubelet sees it
 * (phase, conditions, IPs, container statuses), written with a merge patch
 * on pods/status only when it differs from what was last written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubelet.h"

static const char *const cond_names[KL_NCOND] = { "Initialized", "Ready",
	"ContainersReady", "PodScheduled" };

static bool running(const struct kl_ctr *c)
{
	return c->id[0] && c->have_cur && c->cur.state == KB_RT_RUNNING &&
	    !c->wait_reason[0];
}

/* Running and, when it has probes, started and ready by them. */
static bool ready_of(struct kubelet *kl, const struct kl_pod *p,
    const struct kl_ctr *c, bool *started)
{
	bool st = false, rd = false;
	if (running(c))
		kl_probe_state(kl, p, c, &st, &rd);
	if (started)
		*started = st;
	return rd;
}

static bool initialized(const struct kl_pod *p)
{
	for (size_t i = 0; i < p->ninit; i++)
		if (!p->ctrs[i].done || p->ctrs[i].cur.exit_code != 0)
			return false;
	return true;
}

/* A status patch answered (kl_pod_call). */
static int status_done(struct kubelet *kl, struct kl_pod *p, int rc, void *sent)
{
	(void)kl;
	if (p == NULL)
		return KL_DONE_CALL;
	int again = KL_DONE_CALL;
	p->status_inflight = false;
	if (rc && rc != KB_ENOTFOUND) {
		/* not written: the next sync sends it again, after a back-off
		 * (deleted meanwhile: the informer will say so) */
		if (p->last_status == sent) {
			free(p->last_status);
			p->last_status = NULL;
			p->last_status_len = 0;
		}
		again = KL_RETRY;
	} else if (p->status_again) {
		again = KL_AGAIN;
	}
	p->status_again = false;
	return again;
}

static const char *phase_of(const struct kl_pod *p)
{
	for (size_t i = 0; i < p->ninit; i++)
		if (p->ctrs[i].done && p->ctrs[i].cur.exit_code != 0)
			return "Failed";
	if (!p->sandbox[0] || !initialized(p))
		return "Pending";
	bool all_done = true, failed = false;
	for (size_t i = p->ninit; i < p->nctrs; i++) {
		const struct kl_ctr *c = &p->ctrs[i];
		if (!c->have_cur && !c->have_last && c->restarts == 0)
			return "Pending"; /* never started */
		all_done &= c->done;
		failed |= c->done && c->cur.exit_code != 0;
	}
	if (all_done && p->nctrs > p->ninit)
		return failed ? "Failed" : "Succeeded";
	return "Running";
}

static void pack_terminated(msgpack_packer *pk, const struct kubelet *kl,
    const struct kb_rt_container_status *st, const char *id)
{
	char started[32], finished[32], cid[2 * KB_RT_ID_MAX + 4];
	kl_rfc3339(st->started_ms ? st->started_ms : st->created_ms, started,
	    sizeof(started));
	kl_rfc3339(st->finished_ms, finished, sizeof(finished));
	snprintf(cid, sizeof(cid), "%s://%s", kl->rt_info.name, id);
	const char *reason = st->reason[0] ? st->reason :
	    st->exit_code                  ? "Error" :
					     "Completed";
	kb_mp_pack(pk, "{s:{s:i, s:s, s:s, s:s, s:s}}", "terminated",
	    "exitCode", st->exit_code, "reason", reason, "startedAt", started,
	    "finishedAt", finished, "containerID", cid);
}

static void pack_ctr(msgpack_packer *pk, struct kubelet *kl,
    const struct kl_pod *p, const struct kl_ctr *c, bool init_done)
{
	char cid[2 * KB_RT_ID_MAX + 4], when[32];
	const char *id = c->id[0] ? c->id : c->last_id;
	snprintf(cid, sizeof(cid), "%s://%s", kl->rt_info.name, id);
	bool started = false, ready = ready_of(kl, p, c, &started);
	msgpack_pack_map(pk, id[0] ? 9 : 8);
	kb_mp_pack(pk, "s:s, s:s, s:s, s:b, s:b, s:i", "name", c->name, "image",
	    c->image, "imageID", c->have_cur ? c->cur.image_id : "", "ready",
	    ready, "started", started, "restartCount", (int)c->restarts);
	if (id[0])
		kb_mp_pack(pk, "s:s", "containerID", cid);
	kb_mp_pack_cstr(pk, "state");
	if (c->wait_reason[0]) {
		kb_mp_pack(pk, "{s:{s:s, s:s}}", "waiting", "reason",
		    c->wait_reason, "message", c->wait_message);
	} else if (c->have_cur && c->cur.state == KB_RT_RUNNING) {
		kl_rfc3339(c->cur.started_ms, when, sizeof(when));
		kb_mp_pack(pk, "{s:{s:s}}", "running", "startedAt", when);
	} else if (c->have_cur && c->cur.state == KB_RT_EXITED) {
		pack_terminated(pk, kl, &c->cur, id);
	} else {
		kb_mp_pack(pk, "{s:{s:s}}", "waiting", "reason",
		    c->init || init_done ? "ContainerCreating" :
					   "PodInitializing");
	}
	kb_mp_pack_cstr(pk, "lastState");
	/* In back-off the run that just ended is the last state. */
	if (c->wait_reason[0] && c->have_cur && c->cur.state == KB_RT_EXITED)
		pack_terminated(pk, kl, &c->cur, c->id);
	else if (c->have_last)
		pack_terminated(pk, kl, &c->last, c->last_id);
	else
		msgpack_pack_map(pk, 0);
}

static void pack_conditions(msgpack_packer *pk, struct kubelet *kl,
    struct kl_pod *p, const char *phase)
{
	bool init = initialized(p), ready = true;
	char unready[512] = "";
	size_t off = 0;
	for (size_t i = p->ninit; i < p->nctrs; i++) {
		if (ready_of(kl, p, &p->ctrs[i], NULL))
			continue;
		ready = false;
		off += (size_t)snprintf(unready + off,
		    off < sizeof(unready) ? sizeof(unready) - off : 0, "%s%s",
		    off ? " " : "", p->ctrs[i].name);
		if (off >= sizeof(unready))
			off = sizeof(unready) - 1;
	}
	bool done = !strcmp(phase, "Succeeded") || !strcmp(phase, "Failed");
	bool v[KL_NCOND] = { init, ready && !p->terminating, ready, true };
	char now[32];
	kl_rfc3339(kl_wall_ms(), now, sizeof(now));
	msgpack_pack_array(pk, KL_NCOND);
	for (int i = 0; i < KL_NCOND; i++) {
		if (!p->cond_time[i][0] || p->cond[i] != v[i]) {
			p->cond[i] = v[i];
			memcpy(p->cond_time[i], now, sizeof(now));
		}
		if (v[i]) {
			kb_mp_pack(pk, "{s:s, s:s, s:n, s:s}", "type",
			    cond_names[i], "status", "True", "lastProbeTime",
			    "lastTransitionTime", p->cond_time[i]);
			continue;
		}
		char msg[600];
		const char *reason = done ? "PodCompleted" :
					    "ContainersNotReady";
		if (i == KL_COND_INITIALIZED) {
			reason = "ContainersNotInitialized";
			snprintf(msg, sizeof(msg),
			    "containers with incomplete status: [init]");
		} else {
			snprintf(msg, sizeof(msg),
			    "containers with unready status: [%s]", unready);
		}
		kb_mp_pack(pk, "{s:s, s:s, s:n, s:s, s:s, s:s}", "type",
		    cond_names[i], "status", "False", "lastProbeTime",
		    "lastTransitionTime", p->cond_time[i], "reason", reason,
		    "message", msg);
	}
}

const char *kl_phase(const struct kl_pod *p)
{
	return p->phase ? p->phase : "Pending";
}

int kl_status_write(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *pod)
{
	const char *phase = phase_of(p);
	if (p->phase == NULL || strcmp(p->phase, phase)) {
		char *dup = strdup(phase);
		if (dup == NULL)
			return KB_ENOMEM;
		free(p->phase);
		p->phase = dup;
	}
	bool init_done = initialized(p);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	kb_mp_sbuffer_init(&sb, 1024);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	kb_mp_pack_cstr(&pk, "status");
	msgpack_pack_map(&pk, p->sandbox[0] || p->ip[0] ? 9 : 6);
	kb_mp_pack(&pk, "s:s, s:s, s:[{s:s}]", "phase", phase, "hostIP",
	    kl->address, "hostIPs", "ip", kl->address);
	if (p->sandbox[0] || p->ip[0])
		kb_mp_pack(&pk, "s:s, s:[{s:s}], s:s", "podIP", p->ip, "podIPs",
		    "ip", p->ip, "startTime", p->start_time);
	kb_mp_pack_cstr(&pk, "conditions");
	pack_conditions(&pk, kl, p, phase);
	kb_mp_pack_cstr(&pk, "initContainerStatuses");
	msgpack_pack_array(&pk, p->ninit);
	for (size_t i = 0; i < p->ninit; i++)
		pack_ctr(&pk, kl, p, &p->ctrs[i], init_done);
	kb_mp_pack_cstr(&pk, "containerStatuses");
	msgpack_pack_array(&pk, p->nctrs - p->ninit);
	for (size_t i = p->ninit; i < p->nctrs; i++)
		pack_ctr(&pk, kl, p, &p->ctrs[i], init_done);

	pthread_mutex_lock(&kl->mu);
	bool same = p->last_status && p->last_status_len == sb.size &&
	    !memcmp(p->last_status, sb.data, sb.size);
	/* One patch at a time, so that they land in order: the reply to the
	 * one out asks for another sync. */
	bool wait = !same && p->status_inflight;
	if (wait)
		p->status_again = true;
	pthread_mutex_unlock(&kl->mu);
	if (same || wait) {
		msgpack_sbuffer_destroy(&sb);
		return 0;
	}
	void *copy = malloc(sb.size);
	size_t len = sb.size;
	kb_body *b = copy ? kb_body_from_sbuf(&sb) : NULL;
	if (b)
		memcpy(copy, kb_body_data(b, NULL), len);
	msgpack_sbuffer_destroy(&sb);
	if (b == NULL) {
		free(copy);
		return KB_ENOMEM;
	}
	pthread_mutex_lock(&kl->mu);
	free(p->last_status);
	p->last_status = copy;
	p->last_status_len = len;
	p->status_inflight = true;
	pthread_mutex_unlock(&kl->mu);
	int rc = kl_pod_call(kl, p, "patch", b, status_done, copy);
	if (rc) {
		pthread_mutex_lock(&kl->mu);
		status_done(kl, p, rc, copy);
		pthread_mutex_unlock(&kl->mu);
	}
	return rc;
}
