/* admit_pod_def.c — Pod and PodSpec defaults: core/v1's SetDefaults_*
 * for specs, containers, probes, ports and volumes, SetDefaults_Pod's
 * pod-only rules, and what the default admission plugins add to a pod
 * (ServiceAccount, Priority, DefaultTolerationSeconds) and the pod
 * strategy's initial status. */
#include <stdio.h>
#include <string.h>

#include "admit.h"

#define FILE_MODE 420 /* 0644 */

void adm_resource_list_defaults(json_t *list)
{
	const char *k;
	json_t *v;

	json_object_foreach(list, k, v) {
		struct adm_qty q;
		char buf[64];
		if (adm_qty_json(v, &q))
			continue; /* decode reports bad quantities */
		adm_qty_round_milli(&q);
		adm_qty_text(&q, buf, sizeof buf);
		json_object_set_new(list, k, json_string(buf));
	}
}

/* ParseImageName's tag: "latest" when there is neither tag nor digest. */
static bool image_is_latest(const char *image)
{
	const char *last = strrchr(image, '/');
	const char *name = last ? last + 1 : image;
	const char *at = strchr(name, '@');
	const char *colon = strchr(name, ':');

	if (!*image)
		return false; /* unparseable: no tag */
	if (colon && (!at || colon < at)) {
		size_t n = at ? (size_t)(at - colon - 1) : strlen(colon + 1);
		return n == 6 && !strncmp(colon + 1, "latest", 6);
	}
	return !at;
}

static void http_get_defaults(json_t *h)
{
	if (!h)
		return;
	adm_default_str(h, "path", "/");
	adm_default_str(h, "scheme", "HTTP");
}

static void handler_defaults(json_t *h)
{
	http_get_defaults(adm_obj(h, "httpGet"));
}

static void probe_defaults(json_t *p)
{
	if (!p)
		return;
	handler_defaults(p);
	adm_default(p, "timeoutSeconds", json_integer(1));
	adm_default(p, "periodSeconds", json_integer(10));
	adm_default(p, "successThreshold", json_integer(1));
	adm_default(p, "failureThreshold", json_integer(3));
}

static void field_ref_defaults(json_t *ref)
{
	if (ref)
		adm_default_str(ref, "apiVersion", "v1");
}

static void env_defaults(json_t *env)
{
	size_t i;
	json_t *ev;

	json_array_foreach(env, i, ev)
		field_ref_defaults(
		    adm_obj(adm_obj(ev, "valueFrom"), "fieldRef"));
}

static void container_resources(json_t *c)
{
	json_t *res = adm_obj_make(c, "resources");

	adm_resource_list_defaults(adm_obj(res, "limits"));
	adm_resource_list_defaults(adm_obj(res, "requests"));
}

static void container_defaults(json_t *c)
{
	const char *image = adm_str(c, "image");
	json_t *lc = adm_obj(c, "lifecycle");
	size_t i;
	json_t *port;

	if (!json_is_object(c))
		return;
	if (!adm_str(c, "imagePullPolicy") || !*adm_str(c, "imagePullPolicy"))
		json_object_set_new(c, "imagePullPolicy",
		    json_string(image_is_latest(image ? image : "") ?
			    "Always" :
			    "IfNotPresent"));
	adm_default_str(c, "terminationMessagePath", "/dev/termination-log");
	adm_default_str(c, "terminationMessagePolicy", "File");
	json_array_foreach(adm_arr(c, "ports"), i, port)
		adm_default_str(port, "protocol", "TCP");
	env_defaults(adm_arr(c, "env"));
	container_resources(c);
	probe_defaults(adm_obj(c, "livenessProbe"));
	probe_defaults(adm_obj(c, "readinessProbe"));
	probe_defaults(adm_obj(c, "startupProbe"));
	handler_defaults(adm_obj(lc, "postStart"));
	handler_defaults(adm_obj(lc, "preStop"));
}

static void items_defaults(json_t *items)
{
	size_t i;
	json_t *it;

	json_array_foreach(items, i, it)
		field_ref_defaults(adm_obj(it, "fieldRef"));
}

static void projected_defaults(json_t *p)
{
	size_t i;
	json_t *src, *sat;

	adm_default(p, "defaultMode", json_integer(FILE_MODE));
	json_array_foreach(adm_arr(p, "sources"), i, src) {
		items_defaults(adm_arr(adm_obj(src, "downwardAPI"), "items"));
		if ((sat = adm_obj(src, "serviceAccountToken")))
			adm_default(sat, "expirationSeconds",
			    json_integer(3600));
	}
}

/* The volume sources a VolumeSource may hold: one of them must be set. */
static const char *const volume_sources[] = { "hostPath", "emptyDir",
	"gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs",
	"iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume",
	"cinder", "cephfs", "flocker", "downwardAPI", "fc", "azureFile",
	"configMap", "vsphereVolume", "quobyte", "azureDisk",
	"photonPersistentDisk", "projected", "portworxVolume", "scaleIO",
	"storageos", "csi", "ephemeral", "image", NULL };

static void volume_defaults(json_t *v)
{
	json_t *s;
	bool any = false;

	for (size_t i = 0; volume_sources[i]; i++)
		any |= json_is_object(json_object_get(v, volume_sources[i]));
	if (!any)
		json_object_set_new(v, "emptyDir", json_object());
	if ((s = adm_obj(v, "secret")))
		adm_default(s, "defaultMode", json_integer(FILE_MODE));
	if ((s = adm_obj(v, "configMap")))
		adm_default(s, "defaultMode", json_integer(FILE_MODE));
	if ((s = adm_obj(v, "downwardAPI"))) {
		adm_default(s, "defaultMode", json_integer(FILE_MODE));
		items_defaults(adm_arr(s, "items"));
	}
	if ((s = adm_obj(v, "projected")))
		projected_defaults(s);
	if ((s = adm_obj(v, "hostPath")))
		adm_default(s, "type", json_string(""));
	if ((s = adm_obj(v, "iscsi")))
		adm_default_str(s, "iscsiInterface", "default");
	if ((s = adm_obj(v, "rbd"))) {
		adm_default_str(s, "pool", "rbd");
		adm_default_str(s, "user", "admin");
		adm_default_str(s, "keyring", "/etc/ceph/keyring");
	}
}

static void each_container(json_t *spec, void (*fn)(json_t *c))
{
	static const char *const lists[] = { "initContainers", "containers",
		"ephemeralContainers" };
	size_t i;
	json_t *c;

	for (int l = 0; l < 3; l++)
		json_array_foreach(adm_arr(spec, lists[l]), i, c)
			fn(c);
}

void adm_podspec_defaults(json_t *spec)
{
	size_t i;
	json_t *v;
	const char *sa = adm_str(spec, "serviceAccountName");

	adm_default_str(spec, "dnsPolicy", "ClusterFirst");
	adm_default_str(spec, "restartPolicy", "Always");
	adm_default(spec, "securityContext", json_object());
	adm_default(spec, "terminationGracePeriodSeconds", json_integer(30));
	adm_default_str(spec, "schedulerName", "default-scheduler");
	each_container(spec, container_defaults);
	json_array_foreach(adm_arr(spec, "volumes"), i, v)
		volume_defaults(v);
	adm_resource_list_defaults(adm_obj(spec, "overhead"));
	/* serviceAccount is the deprecated alias of serviceAccountName: the
	 * new field wins, and the old one is written back as its mirror */
	if (adm_is_empty(sa) && !adm_is_empty(adm_str(spec, "serviceAccount")))
		json_object_set(spec, "serviceAccountName",
		    json_object_get(spec, "serviceAccount"));
}

/* Mirror serviceAccountName into the deprecated field, as conversion to
 * v1 does on every read. */
static void mirror_service_account(json_t *spec)
{
	const char *sa = adm_str(spec, "serviceAccountName");

	if (adm_is_empty(sa))
		json_object_del(spec, "serviceAccount");
	else
		json_object_set_new(spec, "serviceAccount", json_string(sa));
}

void adm_template_defaults(json_t *tmpl)
{
	json_t *spec;

	if (!json_is_object(tmpl))
		return;
	spec = adm_obj_make(tmpl, "spec");
	adm_podspec_defaults(spec);
	mirror_service_account(spec);
}

/* --- pod-only rules ------------------------------------------------------- */

/* Requests default to limits in a Pod (not in templates). */
static void requests_from_limits(json_t *c)
{
	json_t *res = adm_obj(c, "resources");
	json_t *lim = adm_obj(res, "limits");
	const char *k;
	json_t *v;

	if (!lim)
		return;
	json_t *req = adm_obj_make(res, "requests");
	json_object_foreach(lim, k, v)
		if (!json_object_get(req, k))
			json_object_set(req, k, v);
}

static void host_network_ports(json_t *spec)
{
	static const char *const lists[] = { "initContainers", "containers" };
	size_t i, j;
	json_t *c, *p;

	if (!adm_bool(spec, "hostNetwork"))
		return;
	for (int l = 0; l < 2; l++)
		json_array_foreach(adm_arr(spec, lists[l]), i, c)
			json_array_foreach(adm_arr(c, "ports"), j, p)
				if (!json_integer_value(
					json_object_get(p, "hostPort")))
					json_object_set(p, "hostPort",
					    json_object_get(p,
						"containerPort"));
}

static bool tolerates(const json_t *tols, const char *key)
{
	size_t i;
	json_t *t;

	json_array_foreach(tols, i, t) {
		const char *k = adm_str(t, "key");
		const char *eff = adm_str(t, "effect");
		if ((adm_is_empty(k) || !strcmp(k, key)) &&
		    (adm_is_empty(eff) || !strcmp(eff, "NoExecute")))
			return true;
	}
	return false;
}

/* DefaultTolerationSeconds: 300s for not-ready and unreachable nodes. */
static void default_tolerations(json_t *spec)
{
	static const char *const keys[] = { "node.kubernetes.io/not-ready",
		"node.kubernetes.io/unreachable" };
	json_t *tols = json_object_get(spec, "tolerations");

	for (int i = 0; i < 2; i++) {
		if (tolerates(tols, keys[i]))
			continue;
		if (!json_is_array(tols)) {
			tols = json_array();
			json_object_set_new(spec, "tolerations", tols);
		}
		json_t *t = json_object();
		json_object_set_new_nocheck(t, "key", json_string_nocheck(keys[i]));
		json_object_set_new_nocheck(t, "operator", json_string_nocheck("Exists"));
		json_object_set_new_nocheck(t, "effect", json_string_nocheck("NoExecute"));
		json_object_set_new_nocheck(t, "tolerationSeconds", json_integer(300));
		json_array_append_new(tols, t);
	}
}

long long adm_class_priority(const char *name)
{
	if (name && !strcmp(name, "system-node-critical"))
		return 2000001000;
	if (name && !strcmp(name, "system-cluster-critical"))
		return 2000000000;
	return 0;
}

static void priority_on_create(json_t *spec)
{
	adm_default(spec, "priority",
	    json_integer(
		adm_class_priority(adm_str(spec, "priorityClassName"))));
	adm_default(spec, "preemptionPolicy",
	    json_string("PreemptLowerPriority"));
}

static void priority_on_update(json_t *spec, const json_t *was)
{
	static const char *const keys[] = { "priority", "preemptionPolicy" };

	for (int i = 0; i < 2; i++) {
		json_t *v = json_object_get(was, keys[i]);
		if (v)
			adm_default(spec, keys[i], json_deep_copy(v));
	}
}

/* --- QoS class (qos.ComputePodQOS) ------------------------------------------ */

struct qos_sum {
	struct adm_qty req[2], lim[2];
	bool has_req[2], has_lim[2];
};

static void qos_add(struct adm_qty *sum, bool *has, const json_t *list, int r,
    bool *found)
{
	static const char *const names[] = { "cpu", "memory" };
	struct adm_qty q;

	if (adm_qty_json(json_object_get(list, names[r]), &q) ||
	    adm_qty_sign(&q) <= 0)
		return;
	sum->nanos = *has ? sum->nanos + q.nanos : q.nanos;
	*has = true;
	if (found)
		*found = true;
}

static bool qos_container(struct qos_sum *s, const json_t *c)
{
	json_t *res = adm_obj(c, "resources");
	bool found[2] = { false, false };

	for (int r = 0; r < 2; r++) {
		qos_add(&s->req[r], &s->has_req[r], adm_obj(res, "requests"), r,
		    NULL);
		qos_add(&s->lim[r], &s->has_lim[r], adm_obj(res, "limits"), r,
		    &found[r]);
	}
	return found[0] && found[1];
}

static const char *pod_qos(const json_t *spec)
{
	static const char *const lists[] = { "containers", "initContainers" };
	struct qos_sum s;
	bool guaranteed = true, any = false, same = true;
	size_t i;
	json_t *c;

	memset(&s, 0, sizeof s);
	for (int l = 0; l < 2; l++)
		json_array_foreach(adm_arr(spec, lists[l]), i, c)
			guaranteed &= qos_container(&s, c);
	for (int r = 0; r < 2; r++) {
		any |= s.has_req[r] || s.has_lim[r];
		if (s.has_req[r] &&
		    (!s.has_lim[r] || adm_qty_cmp(&s.req[r], &s.lim[r])))
			same = false;
		if (s.has_req[r] != s.has_lim[r])
			same = false;
	}
	if (!any)
		return "BestEffort";
	return guaranteed && same ? "Guaranteed" : "Burstable";
}

/* The pod strategy's PrepareForCreate: a new pod is Pending. */
static void initial_status(json_t *pod, const json_t *spec)
{
	json_t *st = json_object();
	json_object_set_new_nocheck(st, "phase", json_string_nocheck("Pending"));
	json_object_set_new_nocheck(st, "qosClass", json_string_nocheck(pod_qos(spec)));

	if (json_array_size(adm_arr(spec, "schedulingGates")))
		json_object_set_new(st, "conditions",
		    json_pack("[{s:s,s:s,s:s,s:s}]", "type", "PodScheduled",
			"status", "False", "reason", "SchedulingGated",
			"message",
			"Scheduling is blocked due to non-empty scheduling gates"));
	json_object_set_new(pod, "status", st);
}

void api_default_pod(json_t *obj, const json_t *old)
{
	json_t *spec;
	json_t *was = adm_obj(old, "spec");

	if (!json_is_object(obj))
		return;
	spec = adm_obj_make(obj, "spec");
	adm_podspec_defaults(spec);
	json_t *cs = adm_arr(spec, "containers");
	size_t i;
	json_t *c;
	json_array_foreach(cs, i, c)
		requests_from_limits(c);
	json_array_foreach(adm_arr(spec, "initContainers"), i, c)
		requests_from_limits(c);
	adm_default(spec, "enableServiceLinks", json_true());
	host_network_ports(spec);
	default_tolerations(spec);
	if (old) {
		priority_on_update(spec, was);
	} else {
		adm_default_str(spec, "serviceAccountName", "default");
		priority_on_create(spec);
		initial_status(obj, spec);
	}
	mirror_service_account(spec);
}
