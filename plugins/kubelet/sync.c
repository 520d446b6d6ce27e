/* plugins/kubelet/sync.c — level-triggered pod sync: compare what the API
 * wants (the informer's copy) with what the runtime has, take one step
 * towards it, write the status. Called for one key at a time per key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubelet.h"

/* A pod this kubelet deleted stays in the table (its containers gone, its
 * logs still there) this long after its API object: a `logs -f` asking
 * again with its cursor (every 100 ms) then gets the last lines written
 * while the containers stopped, and `done`, instead of "not found". */
#define KL_LINGER_MS 1500

static bool terminal(const char *phase)
{
	return phase &&
	    (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"));
}

/* Every container waits with the same reason (no sandbox yet). */
static void all_wait(struct kl_pod *p, const char *reason, const char *msg)
{
	for (size_t i = 0; i < p->nctrs; i++) {
		snprintf(p->ctrs[i].wait_reason, sizeof(p->ctrs[i].wait_reason),
		    "%s", reason);
		snprintf(p->ctrs[i].wait_message,
		    sizeof(p->ctrs[i].wait_message), "%s", msg);
	}
}

static void all_clear(struct kl_pod *p, const char *reason)
{
	for (size_t i = 0; i < p->nctrs; i++)
		if (!strcmp(p->ctrs[i].wait_reason, reason))
			p->ctrs[i].wait_reason[0] =
			    p->ctrs[i].wait_message[0] = '\0';
}

/* The pod CIDR: config, else Node.spec.podCIDR (asked at most every 2 s
 * while unknown). */
static bool have_cidr(struct kubelet *kl)
{
	pthread_mutex_lock(&kl->mu);
	bool have = kl->pod_cidr[0] != '\0';
	int64_t asked = kl->cidr_asked_ms;
	pthread_mutex_unlock(&kl->mu);
	if (have)
		return true;
	int64_t now = kl_mono_ms();
	if (asked && now - asked < 2000)
		return false;
	pthread_mutex_lock(&kl->mu);
	kl->cidr_asked_ms = now;
	pthread_mutex_unlock(&kl->mu);
	kl_node_fetch_cidr(kl);
	pthread_mutex_lock(&kl->mu);
	have = kl->pod_cidr[0] != '\0';
	pthread_mutex_unlock(&kl->mu);
	return have;
}

/* The netns and CNI ADD; the pod IP into p->ip. */
static int network_setup(struct kubelet *kl, struct kl_pod *p,
    const char *dir, char *netns, size_t nslen, char **result)
{
	char err[KB_RT_MESSAGE_MAX];
	kl_netns_path(p->uid, netns, nslen);
	/* Left from an ADD whose sandbox never came (a crash between): undo
	 * it first, so host-local does not hold two addresses for the pod. */
	if (kl_cni_del(kl, p->uid, netns, dir, err, sizeof(err)) != 0)
		kb_warn(kl->ctx, "CNI DEL of a stale attempt failed",
		    "pod=%s err=\"%s\"", p->key, err);
	int rc = kl_netns_create(netns, err, sizeof(err));
	if (rc == 0)
		rc = kl_cni_add(kl, p->uid, netns, dir, result, p->ip,
		    sizeof(p->ip), err, sizeof(err));
	if (rc) {
		kl_netns_remove(netns);
		/* Logged when the reason changes; retried every sync. */
		if (p->nctrs && strcmp(p->ctrs[0].wait_message, err))
			kb_warn(kl->ctx, "cannot set up the pod network",
			    "pod=%s err=\"%s\"", p->key, err);
		all_wait(p, "ContainerCreating", err);
	}
	return rc;
}

/* A hollow node (runtime-fake, as kubemark's): its containers read no
 * files, so the pod dir and the DNS files are left out — they were most
 * of a hollow kubelet's work per pod. Volumes still make what they need
 * (volumes.c creates its own directories); runtime-fake makes a
 * container's log directory when it first writes a line. */
bool kl_hollow(const struct kubelet *kl)
{
	return !strcmp(kl->rt_info.name, "fake");
}

static int sandbox_ensure(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *pod)
{
	if (p->sandbox[0])
		return 0;
	bool host_net = false;
	kb_mp_bool(pod, "spec.hostNetwork", &host_net);
	bool cni = kl->cni && !host_net;
	if (cni && !have_cidr(kl)) {
		all_wait(p, "NetworkNotReady",
		    "network is not ready: no pod CIDR (set the kubelet's pod_cidr, or Node.spec.podCIDR)");
		kb_workqueue_add_after(kl->queue, p->key, 2000);
		return 0;
	}
	all_clear(p, "NetworkNotReady");
	char *dir = kl_pod_dir(kl, p->uid);
	if (dir == NULL)
		return KB_ENOMEM;
	bool hollow = !cni && kl_hollow(kl);
	if (!hollow)
		kl_mkdirs(dir);
	char netns[128] = "";
	char *result = NULL;
	int rc = cni ? network_setup(kl, p, dir, netns, sizeof(netns), &result) :
		       0;
	if (rc) {
		/* The containers say why; the periodic sync tries again. */
		free(dir);
		return 0;
	}
	all_clear(p, "ContainerCreating");
	char err[KB_RT_MESSAGE_MAX];
	if (!cni)
		p->ip[0] = '\0';
	char *hostname = kb_mp_strdup(pod, "spec.hostname");
	struct kb_rt_sandbox_spec spec = {
		.size = sizeof(spec),
		.uid = p->uid,
		.ns = p->ns,
		.name = p->name,
		.pod = pod,
		.hostname = hostname ? hostname : p->name,
		.host_network = host_net,
		.netns_path = cni ? netns : NULL,
		.cni_result = result,
		.pod_dir = dir,
	};
	struct kb_rt_sandbox sb = { .size = sizeof(sb) };
	rc = kl->rt->sandbox_create(kl->rts, &spec, &sb);
	free(hostname);
	free(result);
	if (rc) {
		kb_warn(kl->ctx, "cannot create the pod sandbox",
		    "pod=%s err=\"%s\"", p->key, kb_strerror(rc));
		if (cni)
			kl_pod_net_teardown(kl, p->uid);
		free(dir);
		return rc;
	}
	free(dir);
	memcpy(p->sandbox, sb.id, sizeof(p->sandbox));
	p->no_pod_files = hollow;
	if (host_net)
		snprintf(p->ip, sizeof(p->ip), "%s", kl->address);
	else if (!cni)
		snprintf(p->ip, sizeof(p->ip), "%s",
		    sb.ip[0] ? sb.ip : kl->address);
	if (!p->start_time[0])
		kl_rfc3339(kl_wall_ms(), p->start_time, sizeof(p->start_time));
	if (!hollow && kl_dns_files(kl, p, pod, err, sizeof(err)) != 0)
		kb_warn(kl->ctx, "cannot write /etc/hosts and resolv.conf",
		    "pod=%s err=\"%s\"", p->key, err);
	return 0;
}

/* Init containers in order, each to success; then every container. */
static int run_pod(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *pod)
{
	const char *policy = "Always";
	const char *s;
	size_t len;
	char pol[16];
	if (kb_mp_str(pod, "spec.restartPolicy", &s, &len) &&
	    len < sizeof(pol)) {
		/* as "%.*s": up to a NUL inside */
		len = strnlen(s, len);
		memcpy(pol, s, len);
		pol[len] = '\0';
		policy = pol;
	}
	if (terminal(p->phase)) {
		/* Succeeded or Failed: nothing runs again. Its sandbox and
		 * network go now (the pod IP back to the pool), as the
		 * kubelet does; logs and status stay until the pod goes. */
		if (p->sandbox[0] && !p->net_down) {
			kl->rt->sandbox_remove(kl->rts, p->sandbox);
			kl_pod_net_teardown(kl, p->uid);
			p->net_down = true;
		}
		return 0;
	}
	int rc = sandbox_ensure(kl, p, pod);
	if (rc || !p->sandbox[0]) /* no sandbox yet: nothing can start */
		return rc;
	const msgpack_object *inits = kb_mp_get(pod, "spec.initContainers");
	const msgpack_object *ctrs = kb_mp_get(pod, "spec.containers");
	/* Init containers restart on failure unless the policy is Never. */
	const char *init_policy = !strcmp(policy, "Never") ? "Never" :
							     "OnFailure";
	for (size_t i = 0; i < p->ninit; i++) {
		struct kl_ctr *c = &p->ctrs[i];
		if (c->done)
			continue;
		int st = kl_container_step(kl, p, pod, c,
		    &inits->via.array.ptr[i], init_policy);
		if (st != KL_DONE || !c->done)
			return 0;
		if (c->cur.exit_code != 0)
			return 0; /* failed under Never: the pod fails */
	}
	for (size_t i = p->ninit; i < p->nctrs; i++)
		kl_container_step(kl, p, pod, &p->ctrs[i],
		    &ctrs->via.array.ptr[i - p->ninit], policy);
	return 0;
}

/* Every init container done, every container running, nothing waiting:
 * only the runtime (a container that exits) or the API (an informer
 * event) can change what a sync of this pod does. */
static bool all_running(const struct kl_pod *p)
{
	if (p->terminating || p->nctrs == p->ninit ||
	    !p->sandbox[0])
		return false;
	for (size_t i = 0; i < p->nctrs; i++) {
		const struct kl_ctr *c = &p->ctrs[i];
		if (i < p->ninit) {
			if (!c->done || c->cur.exit_code != 0)
				return false;
			continue;
		}
		if (!c->id[0] || !c->have_cur ||
		    c->cur.state != KB_RT_RUNNING || c->wait_reason[0] ||
		    c->done)
			return false;
	}
	return true;
}

int kl_sync(struct kubelet *kl, const char *key)
{
	char ns[256], name[256];
	const char *slash = strchr(key, '/');
	if (slash == NULL || slash - key >= (long)sizeof(ns) ||
	    strlen(slash + 1) >= sizeof(name))
		return 0;
	memcpy(ns, key, (size_t)(slash - key));
	ns[slash - key] = '\0';
	memcpy(name, slash + 1, strlen(slash + 1) + 1);

	/* Until the first list is in, a missing pod means nothing (an
	 * adopted pod must not be taken for a deleted one). */
	if (!kb_informer_synced(kl->pods_inf)) {
		kb_workqueue_add_after(kl->queue, key, 200);
		return 0;
	}
	kb_body *b = kb_informer_get(kl->pods_inf, ns, name);
	const msgpack_object *pod = b ? kb_body_obj(b) : NULL;
	struct kl_pod *p = kl_pod_find(kl, key);
	if (p && pod == NULL) {
		/* Gone after its final delete: it lingers (kl_enqueue_all
		 * reads gone_ms). */
		int64_t now = kl_mono_ms(), gone = 0;
		pthread_mutex_lock(&kl->mu);
		if (p->deleted && p->gone_ms == 0)
			p->gone_ms = now;
		if (p->deleted)
			gone = p->gone_ms;
		pthread_mutex_unlock(&kl->mu);
		if (gone && now - gone < KL_LINGER_MS) {
			kb_workqueue_add_after(kl->queue, key,
			    KL_LINGER_MS - (now - gone));
			return 0;
		}
	}
	if (p && (pod == NULL || !kb_mp_streq(pod, "metadata.uid", p->uid))) {
		/* Gone from the API (or replaced by a pod of the same name). */
		kl_pod_kill(kl, p, 0);
		kl_pod_drop(kl, p);
		p = NULL;
	}
	if (pod == NULL || !kb_mp_streq(pod, "spec.nodeName", kl->node)) {
		if (b)
			kb_body_unref(b);
		return 0;
	}
	int rc = 0;
	bool deleting = kb_mp_get(pod, "metadata.deletionTimestamp") != NULL;
	if (p == NULL) {
		const char *s;
		size_t len;
		/* A finished pod this kubelet does not know: nothing to run. */
		bool done = kb_mp_str(pod, "status.phase", &s, &len) &&
		    ((len == 9 && !memcmp(s, "Succeeded", 9)) ||
			(len == 6 && !memcmp(s, "Failed", 6)));
		if (done && !deleting)
			goto out;
		if ((p = kl_pod_new(kl, key, pod)) == NULL) {
			rc = KB_ENOMEM;
			goto out;
		}
	}
	if (p->adopted)
		kl_adopt_claim(kl, p, pod);
	p->pod = pod;
	if (deleting) {
		rc = kl_terminate(kl, p, pod);
		p->pod = NULL;
		goto out;
	}
	pthread_mutex_lock(&kl->mu);
	p->settled = false;
	pthread_mutex_unlock(&kl->mu);
	rc = run_pod(kl, p, pod);
	int wrc = kl_status_write(kl, p, pod);
	p->pod = NULL;
	if (rc == 0)
		rc = wrc;
	if (rc == 0 && all_running(p)) {
		pthread_mutex_lock(&kl->mu);
		p->settled = true;
		pthread_mutex_unlock(&kl->mu);
	}
out:
	kb_body_unref(b);
	return rc;
}

bool kl_pod_gone(struct kubelet *kl, const msgpack_object *obj)
{
	char key[512];
	const char *uid;
	size_t len;
	char u[128];
	if (kb_object_key(obj, key, sizeof(key)) == NULL ||
	    !kb_mp_str(obj, "metadata.uid", &uid, &len) || len >= sizeof(u))
		return false;
	memcpy(u, uid, len);
	u[len] = '\0';
	pthread_mutex_lock(&kl->mu);
	struct kl_pod *p = kl_pod_find_locked(kl, key, u);
	bool ours = p && p->deleted;
	if (ours && p->gone_ms == 0)
		p->gone_ms = kl_mono_ms();
	pthread_mutex_unlock(&kl->mu);
	return ours;
}

/* Every KL_FULL_RESYNC-th periodic sync takes every pod, settled or not
 * (as the kubelet's syncFrequency, with the runtime asked every sync
 * period in between as its PLEG relist does). */
#define KL_FULL_RESYNC 10

struct enq {
	struct kubelet *kl;
	bool full;
};

static void add_key(void *arg, const msgpack_object *obj)
{
	struct enq *q = arg;
	struct kubelet *kl = q->kl;
	char key[512];
	if (kb_object_key(obj, key, sizeof(key)) == NULL)
		return;
	if (!q->full) {
		/* Settled: the runtime is asked below. */
		pthread_mutex_lock(&kl->mu);
		struct kl_pod *p = kl->pod_index_bad ?
		    NULL :
		    kb_strmap_get(&kl->pod_index, key);
		bool settled = p && p->settled;
		pthread_mutex_unlock(&kl->mu);
		if (settled)
			return;
	}
	kb_workqueue_add(kl->queue, key);
}

/* A settled pod's container to ask the runtime about. */
struct probe_ctr {
	char *key;
	char id[KB_RT_ID_MAX];
};

void kl_enqueue_all(struct kubelet *kl)
{
	if (kl->pods_inf == NULL || kl->queue == NULL)
		return;
	struct enq q = { kl, kl->relists++ % KL_FULL_RESYNC == 0 };
	kb_informer_each(kl->pods_inf, add_key, &q);
	/* Pods the informer no longer has, in case their delete was missed;
	 * of the settled ones, the containers to ask the runtime about. */
	struct probe_ctr *v = NULL;
	size_t n = 0, cap = 0;
	pthread_mutex_lock(&kl->mu);
	for (struct kl_pod *p = kl->pods; p; p = p->next) {
		/* Gone from the API and lingering: dropped once that is over
		 * (kl_pod_gone leaves it to this). */
		if (p->gone_ms) {
			if (kl_mono_ms() - p->gone_ms >= KL_LINGER_MS)
				kb_workqueue_add(kl->queue, p->key);
			continue;
		}
		if (q.full || !p->settled) {
			kb_workqueue_add(kl->queue, p->key);
			continue;
		}
		for (size_t i = p->ninit; i < p->nctrs; i++) {
			if (n == cap) {
				size_t c = cap ? cap * 2 : 64;
				struct probe_ctr *w =
				    realloc(v, c * sizeof(*w));
				if (w == NULL) {
					kb_workqueue_add(kl->queue, p->key);
					break;
				}
				v = w;
				cap = c;
			}
			if (n < cap && (v[n].key = strdup(p->key)) != NULL) {
				memcpy(v[n].id, p->ctrs[i].id, sizeof(v[n].id));
				n++;
			} else {
				/* No memory: sync it rather than miss it. */
				kb_workqueue_add(kl->queue, p->key);
				break;
			}
		}
	}
	pthread_mutex_unlock(&kl->mu);
	for (size_t i = 0; i < n; i++) {
		struct kb_rt_container_status st = { .size = sizeof(st) };
		if (kl->rt->container_status(kl->rts, v[i].id, &st) != 0 ||
		    st.state != KB_RT_RUNNING)
			kb_workqueue_add(kl->queue, v[i].key);
		free(v[i].key);
	}
	free(v);
}
