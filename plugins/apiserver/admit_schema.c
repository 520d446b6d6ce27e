/* admit_schema.c — the known fields and Go types of each built-in kind
 * (Kubernetes 1.32), for strict field validation, type errors and pruning,
 * and adm_schema() to find them by group and kind. */
#include <string.h>

#include "admit.h"

#define TYPEMETA                                                               \
	ADM_F("apiVersion", STR), ADM_F("kind", STR),                          \
	    ADM_O("metadata", adm_t_objectmeta)

/* --- Pod --------------------------------------------------------------------- */

ADM_TYPE(t_pod, "Pod", TYPEMETA, ADM_O("spec", adm_t_podspec),
    ADM_O("status", adm_t_podstatus));

/* --- apps/v1 ----------------------------------------------------------------- */

ADM_TYPE(t_rolling, "RollingUpdateDeployment", ADM_F("maxUnavailable", INTSTR),
    ADM_F("maxSurge", INTSTR));
ADM_TYPE(t_strategy, "DeploymentStrategy",
    ADM_FT("type", STR, "v1.DeploymentStrategyType"),
    ADM_O("rollingUpdate", t_rolling));
ADM_TYPE(t_dspec, "DeploymentSpec", ADM_F("replicas", I32),
    ADM_O("selector", adm_t_labelselector),
    ADM_O("template", adm_t_podtemplatespec), ADM_O("strategy", t_strategy),
    ADM_F("minReadySeconds", I32), ADM_F("revisionHistoryLimit", I32),
    ADM_F("paused", BOOL), ADM_F("progressDeadlineSeconds", I32));
ADM_TYPE(t_dcond, "DeploymentCondition",
    ADM_FT("type", STR, "v1.DeploymentConditionType"),
    ADM_FT("status", STR, "v1.ConditionStatus"), ADM_F("lastUpdateTime", TIME),
    ADM_F("lastTransitionTime", TIME), ADM_F("reason", STR),
    ADM_F("message", STR));
ADM_TYPE(t_dstatus, "DeploymentStatus", ADM_F("observedGeneration", I64),
    ADM_F("replicas", I32), ADM_F("updatedReplicas", I32),
    ADM_F("readyReplicas", I32), ADM_F("availableReplicas", I32),
    ADM_F("unavailableReplicas", I32), ADM_LO("conditions", t_dcond),
    ADM_F("collisionCount", I32));
ADM_TYPE(t_deployment, "Deployment", TYPEMETA, ADM_O("spec", t_dspec),
    ADM_O("status", t_dstatus));

ADM_TYPE(t_rsspec, "ReplicaSetSpec", ADM_F("replicas", I32),
    ADM_F("minReadySeconds", I32), ADM_O("selector", adm_t_labelselector),
    ADM_O("template", adm_t_podtemplatespec));
ADM_TYPE(t_rscond, "ReplicaSetCondition",
    ADM_FT("type", STR, "v1.ReplicaSetConditionType"),
    ADM_FT("status", STR, "v1.ConditionStatus"),
    ADM_F("lastTransitionTime", TIME), ADM_F("reason", STR),
    ADM_F("message", STR));
ADM_TYPE(t_rsstatus, "ReplicaSetStatus", ADM_F("replicas", I32),
    ADM_F("fullyLabeledReplicas", I32), ADM_F("readyReplicas", I32),
    ADM_F("availableReplicas", I32), ADM_F("observedGeneration", I64),
    ADM_LO("conditions", t_rscond));
ADM_TYPE(t_replicaset, "ReplicaSet", TYPEMETA, ADM_O("spec", t_rsspec),
    ADM_O("status", t_rsstatus));

/* --- Service ----------------------------------------------------------------- */

ADM_TYPE(t_sport, "ServicePort", ADM_F("name", STR),
    ADM_FT("protocol", STR, "v1.Protocol"), ADM_F("appProtocol", STR),
    ADM_F("port", I32), ADM_F("targetPort", INTSTR), ADM_F("nodePort", I32));
ADM_TYPE(t_clientip, "ClientIPConfig", ADM_F("timeoutSeconds", I32));
ADM_TYPE(t_affcfg, "SessionAffinityConfig", ADM_O("clientIP", t_clientip));
ADM_TYPE(t_sspec, "ServiceSpec", ADM_LO("ports", t_sport),
    ADM_M("selector", STR), ADM_F("clusterIP", STR), ADM_L("clusterIPs", STR),
    ADM_FT("type", STR, "v1.ServiceType"), ADM_L("externalIPs", STR),
    ADM_FT("sessionAffinity", STR, "v1.ServiceAffinity"),
    ADM_F("loadBalancerIP", STR), ADM_L("loadBalancerSourceRanges", STR),
    ADM_F("externalName", STR),
    ADM_FT("externalTrafficPolicy", STR, "v1.ServiceExternalTrafficPolicy"),
    ADM_F("healthCheckNodePort", I32), ADM_F("publishNotReadyAddresses", BOOL),
    ADM_O("sessionAffinityConfig", t_affcfg), ADM_L("ipFamilies", STR),
    ADM_FT("ipFamilyPolicy", STR, "v1.IPFamilyPolicy"),
    ADM_F("allocateLoadBalancerNodePorts", BOOL),
    ADM_F("loadBalancerClass", STR),
    ADM_FT("internalTrafficPolicy", STR, "v1.ServiceInternalTrafficPolicy"),
    ADM_F("trafficDistribution", STR));
ADM_TYPE(t_portstatus, "PortStatus", ADM_F("port", I32),
    ADM_FT("protocol", STR, "v1.Protocol"), ADM_F("error", STR));
ADM_TYPE(t_ingress, "LoadBalancerIngress", ADM_F("ip", STR),
    ADM_F("hostname", STR), ADM_FT("ipMode", STR, "v1.LoadBalancerIPMode"),
    ADM_LO("ports", t_portstatus));
ADM_TYPE(t_lbstatus, "LoadBalancerStatus", ADM_LO("ingress", t_ingress));
ADM_TYPE(t_sstatus, "ServiceStatus", ADM_O("loadBalancer", t_lbstatus),
    ADM_LO("conditions", adm_t_condition));
ADM_TYPE(t_service, "Service", TYPEMETA, ADM_O("spec", t_sspec),
    ADM_O("status", t_sstatus));

/* --- Namespace, ConfigMap, Secret, ServiceAccount ----------------------------- */

ADM_TYPE(t_nsspec, "NamespaceSpec", ADM_L("finalizers", STR));
ADM_TYPE(t_nscond, "NamespaceCondition",
    ADM_FT("type", STR, "v1.NamespaceConditionType"),
    ADM_FT("status", STR, "v1.ConditionStatus"),
    ADM_F("lastTransitionTime", TIME), ADM_F("reason", STR),
    ADM_F("message", STR));
ADM_TYPE(t_nsstatus, "NamespaceStatus",
    ADM_FT("phase", STR, "v1.NamespacePhase"), ADM_LO("conditions", t_nscond));
ADM_TYPE(t_namespace, "Namespace", TYPEMETA, ADM_O("spec", t_nsspec),
    ADM_O("status", t_nsstatus));

ADM_TYPE(t_configmap, "ConfigMap", TYPEMETA, ADM_F("immutable", BOOL),
    ADM_M("data", STR), ADM_M("binaryData", BYTES));

ADM_TYPE(t_secret, "Secret", TYPEMETA, ADM_F("immutable", BOOL),
    ADM_M("data", BYTES), ADM_M("stringData", STR),
    ADM_FT("type", STR, "v1.SecretType"));

ADM_TYPE(t_sa, "ServiceAccount", TYPEMETA,
    ADM_LO("secrets", adm_t_objectreference),
    ADM_LO("imagePullSecrets", adm_t_localobjectref),
    ADM_F("automountServiceAccountToken", BOOL));

/* --- Node ------------------------------------------------------------------------ */

ADM_TYPE(t_taint, "Taint", ADM_F("key", STR), ADM_F("value", STR),
    ADM_FT("effect", STR, "v1.TaintEffect"), ADM_F("timeAdded", TIME));
ADM_TYPE(t_nodespec, "NodeSpec", ADM_F("podCIDR", STR), ADM_L("podCIDRs", STR),
    ADM_F("providerID", STR), ADM_F("unschedulable", BOOL),
    ADM_LO("taints", t_taint), ADM_F("configSource", ANY),
    ADM_F("externalID", STR));
ADM_TYPE(t_nodecond, "NodeCondition",
    ADM_FT("type", STR, "v1.NodeConditionType"),
    ADM_FT("status", STR, "v1.ConditionStatus"),
    ADM_F("lastHeartbeatTime", TIME), ADM_F("lastTransitionTime", TIME),
    ADM_F("reason", STR), ADM_F("message", STR));
ADM_TYPE(t_nodeaddr, "NodeAddress", ADM_FT("type", STR, "v1.NodeAddressType"),
    ADM_F("address", STR));
ADM_TYPE(t_daemonep, "DaemonEndpoint", ADM_F("Port", I32));
ADM_TYPE(t_daemoneps, "NodeDaemonEndpoints",
    ADM_O("kubeletEndpoint", t_daemonep));
ADM_TYPE(t_nodeinfo, "NodeSystemInfo", ADM_F("machineID", STR),
    ADM_F("systemUUID", STR), ADM_F("bootID", STR), ADM_F("kernelVersion", STR),
    ADM_F("osImage", STR), ADM_F("containerRuntimeVersion", STR),
    ADM_F("kubeletVersion", STR), ADM_F("kubeProxyVersion", STR),
    ADM_F("operatingSystem", STR), ADM_F("architecture", STR),
    ADM_F("swap", ANY));
ADM_TYPE(t_cimage, "ContainerImage", ADM_L("names", STR),
    ADM_F("sizeBytes", I64));
ADM_TYPE(t_attached, "AttachedVolume",
    ADM_FT("name", STR, "v1.UniqueVolumeName"), ADM_F("devicePath", STR));
ADM_TYPE(t_rhfeat, "NodeRuntimeHandlerFeatures",
    ADM_F("recursiveReadOnlyMounts", BOOL), ADM_F("userNamespaces", BOOL));
ADM_TYPE(t_rhandler, "NodeRuntimeHandler", ADM_F("name", STR),
    ADM_O("features", t_rhfeat));
ADM_TYPE(t_nodefeat, "NodeFeatures", ADM_F("supplementalGroupsPolicy", BOOL));
ADM_TYPE(t_nodestatus, "NodeStatus", ADM_RL("capacity"), ADM_RL("allocatable"),
    ADM_FT("phase", STR, "v1.NodePhase"), ADM_LO("conditions", t_nodecond),
    ADM_LO("addresses", t_nodeaddr), ADM_O("daemonEndpoints", t_daemoneps),
    ADM_O("nodeInfo", t_nodeinfo), ADM_LO("images", t_cimage),
    ADM_L("volumesInUse", STR), ADM_LO("volumesAttached", t_attached),
    ADM_F("config", ANY), ADM_LO("runtimeHandlers", t_rhandler),
    ADM_O("features", t_nodefeat));
ADM_TYPE(t_node, "Node", TYPEMETA, ADM_O("spec", t_nodespec),
    ADM_O("status", t_nodestatus));

/* --- Endpoints and EndpointSlices ---------------------------------------------------- */

ADM_TYPE(t_epaddr, "EndpointAddress", ADM_F("ip", STR), ADM_F("hostname", STR),
    ADM_F("nodeName", STR), ADM_O("targetRef", adm_t_objectreference));
ADM_TYPE(t_epport, "EndpointPort", ADM_F("name", STR), ADM_F("port", I32),
    ADM_FT("protocol", STR, "v1.Protocol"), ADM_F("appProtocol", STR));
ADM_TYPE(t_subset, "EndpointSubset", ADM_LO("addresses", t_epaddr),
    ADM_LO("notReadyAddresses", t_epaddr), ADM_LO("ports", t_epport));
ADM_TYPE(t_endpoints, "Endpoints", TYPEMETA, ADM_LO("subsets", t_subset));

ADM_TYPE(t_epconds, "EndpointConditions", ADM_F("ready", BOOL),
    ADM_F("serving", BOOL), ADM_F("terminating", BOOL));
ADM_TYPE(t_forzone, "ForZone", ADM_F("name", STR));
ADM_TYPE(t_hints, "EndpointHints", ADM_LO("forZones", t_forzone));
ADM_TYPE(t_endpoint, "Endpoint", ADM_L("addresses", STR),
    ADM_O("conditions", t_epconds), ADM_F("hostname", STR),
    ADM_O("targetRef", adm_t_objectreference), ADM_M("deprecatedTopology", STR),
    ADM_F("nodeName", STR), ADM_F("zone", STR), ADM_O("hints", t_hints));
ADM_TYPE(t_sliceport, "EndpointPort", ADM_F("name", STR),
    ADM_FT("protocol", STR, "v1.Protocol"), ADM_F("port", I32),
    ADM_F("appProtocol", STR));
ADM_TYPE(t_slice, "EndpointSlice", TYPEMETA,
    ADM_FT("addressType", STR, "v1.AddressType"),
    ADM_LO("endpoints", t_endpoint), ADM_LO("ports", t_sliceport));

/* --- Lease and Event --------------------------------------------------------------- */

ADM_TYPE(t_leasespec, "LeaseSpec", ADM_F("holderIdentity", STR),
    ADM_F("leaseDurationSeconds", I32), ADM_F("acquireTime", MTIME),
    ADM_F("renewTime", MTIME), ADM_F("leaseTransitions", I32),
    ADM_FT("strategy", STR, "v1.CoordinatedLeaseStrategy"),
    ADM_F("preferredHolder", STR));
ADM_TYPE(t_lease, "Lease", TYPEMETA, ADM_O("spec", t_leasespec));

ADM_TYPE(t_evsource, "EventSource", ADM_F("component", STR),
    ADM_F("host", STR));
ADM_TYPE(t_evseries, "EventSeries", ADM_F("count", I32),
    ADM_F("lastObservedTime", MTIME));
ADM_TYPE(t_event, "Event", TYPEMETA,
    ADM_O("involvedObject", adm_t_objectreference), ADM_F("reason", STR),
    ADM_F("message", STR), ADM_O("source", t_evsource),
    ADM_F("firstTimestamp", TIME), ADM_F("lastTimestamp", TIME),
    ADM_F("count", I32), ADM_F("type", STR), ADM_F("eventTime", MTIME),
    ADM_O("series", t_evseries), ADM_F("action", STR),
    ADM_O("related", adm_t_objectreference), ADM_F("reportingComponent", STR),
    ADM_F("reportingInstance", STR));
ADM_TYPE(t_event2, "Event", TYPEMETA, ADM_F("eventTime", MTIME),
    ADM_O("series", t_evseries), ADM_F("reportingController", STR),
    ADM_F("reportingInstance", STR), ADM_F("action", STR), ADM_F("reason", STR),
    ADM_O("regarding", adm_t_objectreference),
    ADM_O("related", adm_t_objectreference), ADM_F("note", STR),
    ADM_F("type", STR), ADM_O("deprecatedSource", t_evsource),
    ADM_F("deprecatedFirstTimestamp", TIME),
    ADM_F("deprecatedLastTimestamp", TIME), ADM_F("deprecatedCount", I32));

/* --- lookup --------------------------------------------------------------------------- */

static const struct {
	const char *group, *kind;
	const struct adm_stype *type;
} kinds[] = {
	{ "", "Pod", &t_pod },
	{ "apps", "Deployment", &t_deployment },
	{ "apps", "ReplicaSet", &t_replicaset },
	{ "", "Service", &t_service },
	{ "", "Namespace", &t_namespace },
	{ "", "ConfigMap", &t_configmap },
	{ "", "Secret", &t_secret },
	{ "", "ServiceAccount", &t_sa },
	{ "", "Node", &t_node },
	{ "", "Endpoints", &t_endpoints },
	{ "discovery.k8s.io", "EndpointSlice", &t_slice },
	{ "coordination.k8s.io", "Lease", &t_lease },
	{ "", "Event", &t_event },
	{ "events.k8s.io", "Event", &t_event2 },
};

const struct adm_stype *adm_schema(const char *group, const char *kind)
{
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (!strcmp(kinds[i].group, group ? group : "") &&
		    !strcmp(kinds[i].kind, kind ? kind : ""))
			return kinds[i].type;
	return NULL;
}
