/* plugins/apiserver/registry.c — the resource table.
 *
 * One entry per served resource, in discovery order: groups in
 * Kubernetes' priority order (core first, then apps, events.k8s.io,
 * authorization.k8s.io, coordination.k8s.io, discovery.k8s.io) and
 * resources alphabetical within a group-version, as Kubernetes lists
 * them. kubectl resolves an ambiguous name ("events", "ev") to the first
 * match in that order, so core events win over events.k8s.io events.
 *
 * The columns are Kubernetes' own Table columns for each printer; the
 * matching row functions (table.c) fill cells in exactly this order.
 *
 * Core events and events.k8s.io events are stored apart (api_key puts the
 * group in the key), as two resources with their own schemas; Kubernetes
 * shares one storage and converts, which Kubus does not do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

#define COLS(c) .columns = (c), .ncolumns = sizeof(c) / sizeof((c)[0])

/* Column descriptions, shared where Kubernetes shares them. */
#define D_NAME                                                                 \
	"Name must be unique within a namespace. It is required when "         \
	"creating resources and cannot be updated."
#define D_AGE                                                                  \
	"CreationTimestamp is the time this object was created, shown "        \
	"as the time since then."
#define D_CONTAINERS "Names of each container in the template."
#define D_IMAGES "Images referenced by each container in the template."
#define D_SELECTOR "Label query over pods that should match the replica count."

#define NAME_COL                                                               \
	{                                                                      \
		"Name", "string", "name", 0, D_NAME                            \
	}
#define AGE_COL                                                                \
	{                                                                      \
		"Age", "string", "", 0, D_AGE                                  \
	}

static const struct api_column pod_cols[] = {
	NAME_COL,
	{ "Ready", "string", "", 0,
	    "The aggregate readiness state of this pod for accepting traffic." },
	{ "Status", "string", "", 0,
	    "The aggregate status of the containers in this pod." },
	{ "Restarts", "string", "", 0,
	    "The number of times the containers in this pod have been "
	    "restarted and when the last container in this pod has "
	    "restarted." },
	AGE_COL,
	{ "IP", "string", "", 1, "The IP address allocated to the pod." },
	{ "Node", "string", "", 1, "The node the pod is bound to." },
	{ "Nominated Node", "string", "", 1,
	    "The node the scheduler nominated for the pod by preemption." },
	{ "Readiness Gates", "string", "", 1,
	    "Extra conditions evaluated for the pod's readiness." },
};

static const struct api_column deployment_cols[] = {
	NAME_COL,
	{ "Ready", "string", "", 0, "Number of the pod with ready state" },
	{ "Up-to-date", "string", "", 0,
	    "Total number of non-terminated pods targeted by this deployment "
	    "that have the desired template spec." },
	{ "Available", "string", "", 0,
	    "Total number of available pods targeted by this deployment." },
	AGE_COL,
	{ "Containers", "string", "", 1, D_CONTAINERS },
	{ "Images", "string", "", 1, D_IMAGES },
	{ "Selector", "string", "", 1, D_SELECTOR },
};

static const struct api_column replicaset_cols[] = {
	NAME_COL,
	{ "Desired", "integer", "", 0, "Number of desired pods." },
	{ "Current", "integer", "", 0,
	    "The most recently observed number of "
	    "replicas." },
	{ "Ready", "integer", "", 0, "The number of ready replicas." },
	AGE_COL,
	{ "Containers", "string", "", 1, D_CONTAINERS },
	{ "Images", "string", "", 1, D_IMAGES },
	{ "Selector", "string", "", 1, D_SELECTOR },
};

static const struct api_column service_cols[] = {
	NAME_COL,
	{ "Type", "string", "", 0, "How the Service is exposed." },
	{ "Cluster-IP", "string", "", 0,
	    "The IP address of the service, usually assigned at random." },
	{ "External-IP", "string", "", 0,
	    "IP addresses the service also answers on, outside the cluster." },
	{ "Port(s)", "string", "", 0, "The ports exposed by this service." },
	AGE_COL,
	{ "Selector", "string", "", 1,
	    "Route service traffic to pods with labels matching this "
	    "selector." },
};

static const struct api_column node_cols[] = {
	NAME_COL,
	{ "Status", "string", "", 0, "The status of the node" },
	{ "Roles", "string", "", 0, "The roles of the node" },
	AGE_COL,
	{ "Version", "string", "", 0, "Kubelet Version reported by the node." },
	{ "Internal-IP", "string", "", 1,
	    "List of addresses reachable to the "
	    "node." },
	{ "External-IP", "string", "", 1,
	    "List of addresses reachable to the "
	    "node." },
	{ "OS-Image", "string", "", 1, "OS Image reported by the node." },
	{ "Kernel-Version", "string", "", 1,
	    "Kernel Version reported by the "
	    "node." },
	{ "Container-Runtime", "string", "", 1,
	    "ContainerRuntime Version "
	    "reported by the node." },
};

static const struct api_column namespace_cols[] = {
	NAME_COL,
	{ "Status", "string", "", 0, "The status of the namespace" },
	AGE_COL,
};

static const struct api_column configmap_cols[] = {
	NAME_COL,
	{ "Data", "string", "", 0, "Data contains the configuration data." },
	AGE_COL,
};

static const struct api_column secret_cols[] = {
	NAME_COL,
	{ "Type", "string", "", 0,
	    "Used to facilitate programmatic handling "
	    "of secret data." },
	{ "Data", "string", "", 0, "Data contains the secret data." },
	AGE_COL,
};

static const struct api_column serviceaccount_cols[] = {
	NAME_COL,
	{ "Secrets", "string", "", 0,
	    "Secrets is a list of the secrets in the "
	    "same namespace that pods running using this ServiceAccount are "
	    "allowed to use." },
	AGE_COL,
};

static const struct api_column endpoints_cols[] = {
	NAME_COL,
	{ "Endpoints", "string", "", 0,
	    "The set of all endpoints is the union "
	    "of all subsets." },
	AGE_COL,
};

static const struct api_column endpointslice_cols[] = {
	NAME_COL,
	{ "AddressType", "string", "", 0,
	    "The type of address carried by this "
	    "EndpointSlice." },
	{ "Ports", "string", "", 0,
	    "The network ports exposed by each "
	    "endpoint." },
	{ "Endpoints", "string", "", 0,
	    "A list of unique endpoints in this "
	    "slice." },
	AGE_COL,
};

static const struct api_column event_cols[] = {
	{ "Last Seen", "string", "", 0,
	    "The time at which the most recent "
	    "occurrence of this event was recorded." },
	{ "Type", "string", "", 0, "Type of this event (Normal, Warning)." },
	{ "Reason", "string", "", 0,
	    "Short, machine understandable string "
	    "that gives the reason for the transition into the object's "
	    "current status." },
	{ "Object", "string", "", 0, "The object that this event is about." },
	{ "Subobject", "string", "", 1,
	    "The part of the object the event is "
	    "about (a container)." },
	{ "Source", "string", "", 1, "The component reporting this event." },
	{ "Message", "string", "", 0,
	    "A human-readable description of the "
	    "status of this operation." },
	{ "First Seen", "string", "", 1,
	    "The time at which the event was "
	    "first recorded." },
	{ "Count", "string", "", 1,
	    "The number of times this event has "
	    "occurred." },
	{ "Name", "string", "name", 1, D_NAME },
};

static const struct api_column lease_cols[] = {
	NAME_COL,
	{ "Holder", "string", "", 0,
	    "The identity of the holder of a current "
	    "lease." },
	AGE_COL,
};

#define POD_SUBS                                                               \
	(API_SUB_ATTACH | API_SUB_BINDING | API_SUB_EVICTION | API_SUB_EXEC |  \
	    API_SUB_LOG | API_SUB_PORTFORWARD | API_SUB_STATUS)

/* Designated initialisers; what is not named is false, 0 or NULL. */
const struct api_resource api_resources[] = {
	/* core/v1 */
	{ .group = "",
	    .version = "v1",
	    .kind = "ConfigMap",
	    .list_kind = "ConfigMapList",
	    .plural = "configmaps",
	    .singular = "configmap",
	    .namespaced = true,
	    .short_names = { "cm" },
	    COLS(configmap_cols),
	    .row = api_row_configmap,
	    .validate = api_validate_configmap },
	{ .group = "",
	    .version = "v1",
	    .kind = "Endpoints",
	    .list_kind = "EndpointsList",
	    .plural = "endpoints",
	    .singular = "endpoints",
	    .namespaced = true,
	    .short_names = { "ep" },
	    COLS(endpoints_cols),
	    .row = api_row_endpoints,
	    .validate = api_validate_endpoints },
	{ .group = "",
	    .version = "v1",
	    .kind = "Event",
	    .list_kind = "EventList",
	    .plural = "events",
	    .singular = "event",
	    .namespaced = true,
	    .short_names = { "ev" },
	    COLS(event_cols),
	    .row = api_row_event,
	    .validate = api_validate_event },
	/* Kubernetes serves namespaces/status (and /finalize): the status
	 * one lets the namespace controller set the phase. */
	{ .group = "",
	    .version = "v1",
	    .kind = "Namespace",
	    .list_kind = "NamespaceList",
	    .plural = "namespaces",
	    .singular = "namespace",
	    .short_names = { "ns" },
	    .subresources = API_SUB_STATUS,
	    .has_status = true,
	    COLS(namespace_cols),
	    .row = api_row_namespace,
	    .defaults = api_default_namespace,
	    .validate = api_validate_namespace },
	{ .group = "",
	    .version = "v1",
	    .kind = "Node",
	    .list_kind = "NodeList",
	    .plural = "nodes",
	    .singular = "node",
	    .short_names = { "no" },
	    .subresources = API_SUB_STATUS,
	    .has_status = true,
	    COLS(node_cols),
	    .row = api_row_node,
	    .validate = api_validate_node },
	{ .group = "",
	    .version = "v1",
	    .kind = "Pod",
	    .list_kind = "PodList",
	    .plural = "pods",
	    .singular = "pod",
	    .namespaced = true,
	    .short_names = { "po" },
	    .categories = { "all" },
	    .subresources = POD_SUBS,
	    .has_status = true,
	    COLS(pod_cols),
	    .row = api_row_pod,
	    .defaults = api_default_pod,
	    .validate = api_validate_pod },
	{ .group = "",
	    .version = "v1",
	    .kind = "Secret",
	    .list_kind = "SecretList",
	    .plural = "secrets",
	    .singular = "secret",
	    .namespaced = true,
	    COLS(secret_cols),
	    .row = api_row_secret,
	    .defaults = api_default_secret,
	    .validate = api_validate_secret },
	{ .group = "",
	    .version = "v1",
	    .kind = "ServiceAccount",
	    .list_kind = "ServiceAccountList",
	    .plural = "serviceaccounts",
	    .singular = "serviceaccount",
	    .namespaced = true,
	    .short_names = { "sa" },
	    COLS(serviceaccount_cols),
	    .row = api_row_serviceaccount,
	    .validate = api_validate_serviceaccount },
	{ .group = "",
	    .version = "v1",
	    .kind = "Service",
	    .list_kind = "ServiceList",
	    .plural = "services",
	    .singular = "service",
	    .namespaced = true,
	    .short_names = { "svc" },
	    .categories = { "all" },
	    .subresources = API_SUB_STATUS,
	    .has_status = true,
	    COLS(service_cols),
	    .row = api_row_service,
	    .defaults = api_default_service,
	    .validate = api_validate_service },
	/* apps/v1 */
	{ .group = "apps",
	    .version = "v1",
	    .kind = "Deployment",
	    .list_kind = "DeploymentList",
	    .plural = "deployments",
	    .singular = "deployment",
	    .namespaced = true,
	    .short_names = { "deploy" },
	    .categories = { "all" },
	    .subresources = API_SUB_SCALE | API_SUB_STATUS,
	    .has_status = true,
	    .generation = true,
	    COLS(deployment_cols),
	    .row = api_row_deployment,
	    .defaults = api_default_deployment,
	    .validate = api_validate_deployment },
	{ .group = "apps",
	    .version = "v1",
	    .kind = "ReplicaSet",
	    .list_kind = "ReplicaSetList",
	    .plural = "replicasets",
	    .singular = "replicaset",
	    .namespaced = true,
	    .short_names = { "rs" },
	    .categories = { "all" },
	    .subresources = API_SUB_SCALE | API_SUB_STATUS,
	    .has_status = true,
	    .generation = true,
	    COLS(replicaset_cols),
	    .row = api_row_replicaset,
	    .defaults = api_default_replicaset,
	    .validate = api_validate_replicaset },
	/* events.k8s.io/v1: its own schema (regarding, note, …), so core's
	 * event validation does not apply. Also "ev", as in Kubernetes. */
	{ .group = "events.k8s.io",
	    .version = "v1",
	    .kind = "Event",
	    .list_kind = "EventList",
	    .plural = "events",
	    .singular = "event",
	    .namespaced = true,
	    .short_names = { "ev" },
	    COLS(event_cols),
	    .row = api_row_event },
	/* authorization.k8s.io/v1: answered, never stored */
	{ .group = "authorization.k8s.io",
	    .version = "v1",
	    .kind = "SelfSubjectAccessReview",
	    .list_kind = "SelfSubjectAccessReviewList",
	    .plural = "selfsubjectaccessreviews",
	    .singular = "selfsubjectaccessreview",
	    .virtual_ = true },
	/* coordination.k8s.io/v1 */
	{ .group = "coordination.k8s.io",
	    .version = "v1",
	    .kind = "Lease",
	    .list_kind = "LeaseList",
	    .plural = "leases",
	    .singular = "lease",
	    .namespaced = true,
	    COLS(lease_cols),
	    .row = api_row_lease,
	    .validate = api_validate_lease },
	/* discovery.k8s.io/v1: EndpointSlice has metadata.generation */
	{ .group = "discovery.k8s.io",
	    .version = "v1",
	    .kind = "EndpointSlice",
	    .list_kind = "EndpointSliceList",
	    .plural = "endpointslices",
	    .singular = "endpointslice",
	    .namespaced = true,
	    .generation = true,
	    COLS(endpointslice_cols),
	    .row = api_row_endpointslice,
	    .validate = api_validate_endpointslice },
};

const size_t api_nresources = sizeof(api_resources) / sizeof(api_resources[0]);

static bool str_eq(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

const char *api_group_version(const struct api_resource *r, char *buf,
    size_t len)
{
	if (r->group[0] == '\0')
		snprintf(buf, len, "%s", r->version);
	else
		snprintf(buf, len, "%s/%s", r->group, r->version);
	return buf;
}

const char *api_kind_qual(const struct api_resource *r, char *buf,
    size_t len)
{
	if (r->group[0] == '\0')
		snprintf(buf, len, "%s", r->kind);
	else
		snprintf(buf, len, "%s.%s", r->kind, r->group);
	return buf;
}

const struct api_resource *api_resource_find(const char *group,
    const char *version, const char *plural)
{
	if (version == NULL || plural == NULL)
		return NULL;
	for (size_t i = 0; i < api_nresources; i++) {
		const struct api_resource *r = &api_resources[i];
		if (str_eq(r->group, group) && !strcmp(r->version, version) &&
		    !strcmp(r->plural, plural))
			return r;
	}
	return NULL;
}

const struct api_resource *api_resource_by_kind(const char *api_version,
    const char *kind)
{
	if (api_version == NULL || kind == NULL)
		return NULL;
	/* "apps/v1" -> group "apps", version "v1"; "v1" -> core. */
	const char *slash = strchr(api_version, '/');
	const char *version = slash ? slash + 1 : api_version;
	size_t glen = slash ? (size_t)(slash - api_version) : 0;
	if (slash && glen == 0)
		return NULL; /* "/v1": the core group is written "v1" */
	for (size_t i = 0; i < api_nresources; i++) {
		const struct api_resource *r = &api_resources[i];
		if (strlen(r->group) == glen &&
		    !strncmp(r->group, api_version, glen) &&
		    !strcmp(r->version, version) && !strcmp(r->kind, kind))
			return r;
	}
	return NULL;
}

/* Pieces joined without a format: every write makes one or more keys. */
static char *join(const char *const *parts, size_t n)
{
	size_t len[8], total = 1;
	for (size_t i = 0; i < n; i++)
		total += (len[i] = strlen(parts[i]));
	char *key = malloc(total), *p = key;
	if (key == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		memcpy(p, parts[i], len[i]);
		p += len[i];
	}
	*p = '\0';
	return key;
}

char *api_key(const struct api_resource *r, const char *ns, const char *name)
{
	const char *g = r->group[0] ? r->group : "";
	const char *gs = r->group[0] ? "/" : "";
	/* Cluster-scoped resources ignore a namespace. */
	if (!r->namespaced || (ns == NULL && name == NULL))
		return name ?
		    join((const char *[]){ "/registry/", g, gs, r->plural, "/", name }, 6) :
		    join((const char *[]){ "/registry/", g, gs, r->plural, "/" }, 5);
	if (name == NULL)
		return join((const char *[]){ "/registry/", g, gs, r->plural, "/", ns, "/" }, 7);
	return join((const char *[]){ "/registry/", g, gs, r->plural, "/", ns ? ns : "", "/",
	    name }, 8);
}
