/* plugins/apiserver/proto_schema.c — the protobuf messages the API server
 * decodes: field numbers from kubernetes/api and apimachinery's
 * generated.proto, JSON names and omitempty-ness from their Go types.
 *
 * Scope: the kinds kubectl's create subcommands and `auth can-i` send as
 * protobuf (and ReplicaSet, which shares Deployment's pieces), with the
 * PodSpec/Container fields people set. Fields not listed here are skipped
 * by the decoder, as protobuf readers skip unknown fields.
 */
#include "codec.h"

/* The tables read best one message to a paragraph. */
/* clang-format off */

/* Field constructors. F: omitted when zero; K: kept when zero (Go pointer
 * or no omitempty); R: repeated; M/MR/MK: a message, repeated, kept;
 * I: an inlined embedded struct. */
#define F(n, t, nm) { n, PB_##t, 0, nm, NULL }
#define K(n, t, nm) { n, PB_##t, PB_KEEP, nm, NULL }
#define R(n, t, nm) { n, PB_##t, PB_REP, nm, NULL }
#define M(n, nm, m) { n, PB_MSG, 0, nm, &m }
#define MR(n, nm, m) { n, PB_MSG, PB_REP, nm, &m }
#define I(n, m) { n, PB_MSG, PB_INLINE, "", &m }

#define MSG(id, ...)                                                       \
	static const struct pb_field id##_fields[] = { __VA_ARGS__ };      \
	static const struct pb_msg id = { #id, id##_fields,                \
		sizeof(id##_fields) / sizeof(id##_fields[0]) }

/* --- meta/v1 ---------------------------------------------------------------- */

MSG(OwnerReference,
    K(5, STRING, "apiVersion"), K(1, STRING, "kind"), K(3, STRING, "name"),
    K(4, STRING, "uid"), K(6, BOOL, "controller"),
    K(7, BOOL, "blockOwnerDeletion"));

MSG(ManagedFieldsEntry,
    F(1, STRING, "manager"), F(2, STRING, "operation"),
    F(3, STRING, "apiVersion"), F(4, TIME, "time"),
    F(6, STRING, "fieldsType"), F(7, FIELDS, "fieldsV1"),
    F(8, STRING, "subresource"));

MSG(ObjectMeta,
    F(1, STRING, "name"), F(2, STRING, "generateName"),
    F(3, STRING, "namespace"), F(4, STRING, "selfLink"),
    F(5, STRING, "uid"), F(6, STRING, "resourceVersion"),
    F(7, INT64, "generation"), F(8, TIME, "creationTimestamp"),
    F(9, TIME, "deletionTimestamp"),
    K(10, INT64, "deletionGracePeriodSeconds"),
    F(11, MAP_STRING, "labels"), F(12, MAP_STRING, "annotations"),
    MR(13, "ownerReferences", OwnerReference),
    R(14, STRING, "finalizers"),
    MR(17, "managedFields", ManagedFieldsEntry));

MSG(LabelSelectorRequirement,
    K(1, STRING, "key"), K(2, STRING, "operator"), R(3, STRING, "values"));

MSG(LabelSelector,
    F(1, MAP_STRING, "matchLabels"),
    MR(2, "matchExpressions", LabelSelectorRequirement));

MSG(Condition,
    K(1, STRING, "type"), K(2, STRING, "status"),
    F(3, INT64, "observedGeneration"), F(4, TIME, "lastTransitionTime"),
    K(5, STRING, "reason"), K(6, STRING, "message"));

/* --- core/v1: references and selectors ---------------------------------------- */

MSG(LocalObjectReference, F(1, STRING, "name"));

MSG(ObjectReference,
    F(1, STRING, "kind"), F(2, STRING, "namespace"), F(3, STRING, "name"),
    F(4, STRING, "uid"), F(5, STRING, "apiVersion"),
    F(6, STRING, "resourceVersion"), F(7, STRING, "fieldPath"));

MSG(KeyToPath,
    K(1, STRING, "key"), K(2, STRING, "path"), K(3, INT32, "mode"));

MSG(ConfigMapKeySelector,
    I(1, LocalObjectReference), K(2, STRING, "key"), K(3, BOOL, "optional"));

MSG(SecretKeySelector,
    I(1, LocalObjectReference), K(2, STRING, "key"), K(3, BOOL, "optional"));

MSG(ObjectFieldSelector,
    F(1, STRING, "apiVersion"), K(2, STRING, "fieldPath"));

MSG(ResourceFieldSelector,
    F(1, STRING, "containerName"), K(2, STRING, "resource"),
    F(3, QUANTITY, "divisor"));

MSG(NodeSelectorRequirement,
    K(1, STRING, "key"), K(2, STRING, "operator"), R(3, STRING, "values"));

MSG(NodeSelectorTerm,
    MR(1, "matchExpressions", NodeSelectorRequirement),
    MR(2, "matchFields", NodeSelectorRequirement));

/* --- core/v1: containers --------------------------------------------------------- */

MSG(EnvVarSource,
    M(1, "fieldRef", ObjectFieldSelector),
    M(2, "resourceFieldRef", ResourceFieldSelector),
    M(3, "configMapKeyRef", ConfigMapKeySelector),
    M(4, "secretKeyRef", SecretKeySelector));

MSG(EnvVar,
    K(1, STRING, "name"), F(2, STRING, "value"),
    M(3, "valueFrom", EnvVarSource));

MSG(ConfigMapEnvSource,
    I(1, LocalObjectReference), K(2, BOOL, "optional"));

MSG(SecretEnvSource,
    I(1, LocalObjectReference), K(2, BOOL, "optional"));

MSG(EnvFromSource,
    F(1, STRING, "prefix"), M(2, "configMapRef", ConfigMapEnvSource),
    M(3, "secretRef", SecretEnvSource));

MSG(ContainerPort,
    F(1, STRING, "name"), F(2, INT32, "hostPort"),
    K(3, INT32, "containerPort"), F(4, STRING, "protocol"),
    F(5, STRING, "hostIP"));

MSG(ResourceClaim, K(1, STRING, "name"), F(2, STRING, "request"));

MSG(ResourceRequirements,
    F(1, MAP_QUANTITY, "limits"), F(2, MAP_QUANTITY, "requests"),
    MR(3, "claims", ResourceClaim));

MSG(VolumeMount,
    K(1, STRING, "name"), F(2, BOOL, "readOnly"), K(3, STRING, "mountPath"),
    F(4, STRING, "subPath"), K(5, STRING, "mountPropagation"),
    F(6, STRING, "subPathExpr"), K(7, STRING, "recursiveReadOnly"));

MSG(VolumeDevice, K(1, STRING, "name"), K(2, STRING, "devicePath"));

MSG(ExecAction, R(1, STRING, "command"));

MSG(HTTPHeader, K(1, STRING, "name"), K(2, STRING, "value"));

MSG(HTTPGetAction,
    F(1, STRING, "path"), F(2, INTSTR, "port"), F(3, STRING, "host"),
    F(4, STRING, "scheme"), MR(5, "httpHeaders", HTTPHeader));

MSG(TCPSocketAction, F(1, INTSTR, "port"), F(2, STRING, "host"));

MSG(GRPCAction, K(1, INT32, "port"), K(2, STRING, "service"));

MSG(SleepAction, K(1, INT64, "seconds"));

MSG(ProbeHandler,
    M(1, "exec", ExecAction), M(2, "httpGet", HTTPGetAction),
    M(3, "tcpSocket", TCPSocketAction), M(4, "grpc", GRPCAction));

MSG(Probe,
    I(1, ProbeHandler), F(2, INT32, "initialDelaySeconds"),
    F(3, INT32, "timeoutSeconds"), F(4, INT32, "periodSeconds"),
    F(5, INT32, "successThreshold"), F(6, INT32, "failureThreshold"),
    K(7, INT64, "terminationGracePeriodSeconds"));

MSG(LifecycleHandler,
    M(1, "exec", ExecAction), M(2, "httpGet", HTTPGetAction),
    M(3, "tcpSocket", TCPSocketAction), M(4, "sleep", SleepAction));

MSG(Lifecycle,
    M(1, "postStart", LifecycleHandler), M(2, "preStop", LifecycleHandler),
    K(3, STRING, "stopSignal"));

MSG(Capabilities, R(1, STRING, "add"), R(2, STRING, "drop"));

MSG(SELinuxOptions,
    F(1, STRING, "user"), F(2, STRING, "role"), F(3, STRING, "type"),
    F(4, STRING, "level"));

MSG(SeccompProfile, K(1, STRING, "type"), K(2, STRING, "localhostProfile"));

MSG(SecurityContext,
    M(1, "capabilities", Capabilities), K(2, BOOL, "privileged"),
    M(3, "seLinuxOptions", SELinuxOptions), K(4, INT64, "runAsUser"),
    K(5, BOOL, "runAsNonRoot"), K(6, BOOL, "readOnlyRootFilesystem"),
    K(7, BOOL, "allowPrivilegeEscalation"), K(8, INT64, "runAsGroup"),
    K(9, STRING, "procMount"), M(11, "seccompProfile", SeccompProfile));

MSG(ContainerResizePolicy,
    K(1, STRING, "resourceName"), K(2, STRING, "restartPolicy"));

MSG(Container,
    K(1, STRING, "name"), F(2, STRING, "image"), R(3, STRING, "command"),
    R(4, STRING, "args"), F(5, STRING, "workingDir"),
    MR(6, "ports", ContainerPort), MR(19, "envFrom", EnvFromSource),
    MR(7, "env", EnvVar), M(8, "resources", ResourceRequirements),
    MR(23, "resizePolicy", ContainerResizePolicy),
    K(24, STRING, "restartPolicy"),
    MR(9, "volumeMounts", VolumeMount),
    MR(21, "volumeDevices", VolumeDevice),
    M(10, "livenessProbe", Probe), M(11, "readinessProbe", Probe),
    M(22, "startupProbe", Probe), M(12, "lifecycle", Lifecycle),
    F(13, STRING, "terminationMessagePath"),
    F(20, STRING, "terminationMessagePolicy"),
    F(14, STRING, "imagePullPolicy"),
    M(15, "securityContext", SecurityContext), F(16, BOOL, "stdin"),
    F(17, BOOL, "stdinOnce"), F(18, BOOL, "tty"));

/* --- core/v1: volumes ------------------------------------------------------------- */

MSG(HostPathVolumeSource, K(1, STRING, "path"), K(2, STRING, "type"));

MSG(EmptyDirVolumeSource,
    F(1, STRING, "medium"), F(2, QUANTITY, "sizeLimit"));

MSG(SecretVolumeSource,
    F(1, STRING, "secretName"), MR(2, "items", KeyToPath),
    K(3, INT32, "defaultMode"), K(4, BOOL, "optional"));

MSG(ConfigMapVolumeSource,
    I(1, LocalObjectReference), MR(2, "items", KeyToPath),
    K(3, INT32, "defaultMode"), K(4, BOOL, "optional"));

MSG(NFSVolumeSource,
    K(1, STRING, "server"), K(2, STRING, "path"), F(3, BOOL, "readOnly"));

MSG(PersistentVolumeClaimVolumeSource,
    K(1, STRING, "claimName"), F(2, BOOL, "readOnly"));

MSG(DownwardAPIVolumeFile,
    K(1, STRING, "path"), M(2, "fieldRef", ObjectFieldSelector),
    M(3, "resourceFieldRef", ResourceFieldSelector), K(4, INT32, "mode"));

MSG(DownwardAPIVolumeSource,
    MR(1, "items", DownwardAPIVolumeFile), K(2, INT32, "defaultMode"));

MSG(SecretProjection,
    I(1, LocalObjectReference), MR(2, "items", KeyToPath),
    K(4, BOOL, "optional"));

MSG(ConfigMapProjection,
    I(1, LocalObjectReference), MR(2, "items", KeyToPath),
    K(4, BOOL, "optional"));

MSG(DownwardAPIProjection, MR(1, "items", DownwardAPIVolumeFile));

MSG(ServiceAccountTokenProjection,
    F(1, STRING, "audience"), K(2, INT64, "expirationSeconds"),
    K(3, STRING, "path"));

MSG(VolumeProjection,
    M(1, "secret", SecretProjection),
    M(2, "downwardAPI", DownwardAPIProjection),
    M(3, "configMap", ConfigMapProjection),
    M(4, "serviceAccountToken", ServiceAccountTokenProjection));

MSG(ProjectedVolumeSource,
    MR(1, "sources", VolumeProjection), K(2, INT32, "defaultMode"));

MSG(VolumeSource,
    M(1, "hostPath", HostPathVolumeSource),
    M(2, "emptyDir", EmptyDirVolumeSource),
    M(6, "secret", SecretVolumeSource), M(7, "nfs", NFSVolumeSource),
    M(10, "persistentVolumeClaim", PersistentVolumeClaimVolumeSource),
    M(16, "downwardAPI", DownwardAPIVolumeSource),
    M(19, "configMap", ConfigMapVolumeSource),
    M(26, "projected", ProjectedVolumeSource));

MSG(Volume, K(1, STRING, "name"), I(2, VolumeSource));

/* --- core/v1: scheduling ----------------------------------------------------------- */

MSG(NodeSelector, MR(1, "nodeSelectorTerms", NodeSelectorTerm));

MSG(PreferredSchedulingTerm,
    K(1, INT32, "weight"), M(2, "preference", NodeSelectorTerm));

MSG(NodeAffinity,
    M(1, "requiredDuringSchedulingIgnoredDuringExecution", NodeSelector),
    MR(2, "preferredDuringSchedulingIgnoredDuringExecution",
	PreferredSchedulingTerm));

MSG(PodAffinityTerm,
    M(1, "labelSelector", LabelSelector), R(2, STRING, "namespaces"),
    K(3, STRING, "topologyKey"), M(4, "namespaceSelector", LabelSelector),
    R(5, STRING, "matchLabelKeys"), R(6, STRING, "mismatchLabelKeys"));

MSG(WeightedPodAffinityTerm,
    K(1, INT32, "weight"), M(2, "podAffinityTerm", PodAffinityTerm));

MSG(PodAffinity,
    MR(1, "requiredDuringSchedulingIgnoredDuringExecution", PodAffinityTerm),
    MR(2, "preferredDuringSchedulingIgnoredDuringExecution",
	WeightedPodAffinityTerm));

MSG(Affinity,
    M(1, "nodeAffinity", NodeAffinity), M(2, "podAffinity", PodAffinity),
    M(3, "podAntiAffinity", PodAffinity));

MSG(Toleration,
    F(1, STRING, "key"), F(2, STRING, "operator"), F(3, STRING, "value"),
    F(4, STRING, "effect"), K(5, INT64, "tolerationSeconds"));

MSG(Sysctl, K(1, STRING, "name"), K(2, STRING, "value"));

MSG(PodSecurityContext,
    M(1, "seLinuxOptions", SELinuxOptions), K(2, INT64, "runAsUser"),
    K(3, BOOL, "runAsNonRoot"), R(4, INT64, "supplementalGroups"),
    K(5, INT64, "fsGroup"), K(6, INT64, "runAsGroup"),
    MR(7, "sysctls", Sysctl), K(9, STRING, "fsGroupChangePolicy"),
    M(10, "seccompProfile", SeccompProfile));

MSG(HostAlias, K(1, STRING, "ip"), R(2, STRING, "hostnames"));

MSG(PodDNSConfigOption, F(1, STRING, "name"), K(2, STRING, "value"));

MSG(PodDNSConfig,
    R(1, STRING, "nameservers"), R(2, STRING, "searches"),
    MR(3, "options", PodDNSConfigOption));

MSG(PodReadinessGate, K(1, STRING, "conditionType"));

MSG(TopologySpreadConstraint,
    K(1, INT32, "maxSkew"), K(2, STRING, "topologyKey"),
    K(3, STRING, "whenUnsatisfiable"), M(4, "labelSelector", LabelSelector),
    K(5, INT32, "minDomains"), K(6, STRING, "nodeAffinityPolicy"),
    K(7, STRING, "nodeTaintsPolicy"), R(8, STRING, "matchLabelKeys"));

MSG(PodOS, K(1, STRING, "name"));

MSG(PodSpec,
    MR(1, "volumes", Volume), MR(20, "initContainers", Container),
    MR(2, "containers", Container), F(3, STRING, "restartPolicy"),
    K(4, INT64, "terminationGracePeriodSeconds"),
    K(5, INT64, "activeDeadlineSeconds"), F(6, STRING, "dnsPolicy"),
    F(7, MAP_STRING, "nodeSelector"), F(8, STRING, "serviceAccountName"),
    F(9, STRING, "serviceAccount"),
    K(21, BOOL, "automountServiceAccountToken"),
    F(10, STRING, "nodeName"), F(11, BOOL, "hostNetwork"),
    F(12, BOOL, "hostPID"), F(13, BOOL, "hostIPC"),
    K(27, BOOL, "shareProcessNamespace"),
    M(14, "securityContext", PodSecurityContext),
    MR(15, "imagePullSecrets", LocalObjectReference),
    F(16, STRING, "hostname"), F(17, STRING, "subdomain"),
    M(18, "affinity", Affinity), F(19, STRING, "schedulerName"),
    MR(22, "tolerations", Toleration), MR(23, "hostAliases", HostAlias),
    F(24, STRING, "priorityClassName"), K(25, INT32, "priority"),
    M(26, "dnsConfig", PodDNSConfig),
    MR(28, "readinessGates", PodReadinessGate),
    K(29, STRING, "runtimeClassName"), K(30, BOOL, "enableServiceLinks"),
    K(31, STRING, "preemptionPolicy"), F(32, MAP_QUANTITY, "overhead"),
    MR(33, "topologySpreadConstraints", TopologySpreadConstraint),
    K(35, BOOL, "setHostnameAsFQDN"), M(36, "os", PodOS),
    K(37, BOOL, "hostUsers"));

MSG(PodTemplateSpec, M(1, "metadata", ObjectMeta), M(2, "spec", PodSpec));

/* --- core/v1: the kinds --------------------------------------------------------------- */

MSG(NamespaceSpec, R(1, STRING, "finalizers"));

MSG(NamespaceCondition,
    K(1, STRING, "type"), K(2, STRING, "status"),
    F(4, TIME, "lastTransitionTime"), F(5, STRING, "reason"),
    F(6, STRING, "message"));

MSG(NamespaceStatus,
    F(1, STRING, "phase"), MR(2, "conditions", NamespaceCondition));

MSG(Namespace,
    M(1, "metadata", ObjectMeta), M(2, "spec", NamespaceSpec),
    M(3, "status", NamespaceStatus));

MSG(ConfigMap,
    M(1, "metadata", ObjectMeta), K(4, BOOL, "immutable"),
    F(2, MAP_STRING, "data"), F(3, MAP_BYTES, "binaryData"));

MSG(Secret,
    M(1, "metadata", ObjectMeta), K(5, BOOL, "immutable"),
    F(2, MAP_BYTES, "data"), F(4, MAP_STRING, "stringData"),
    F(3, STRING, "type"));

MSG(ServiceAccount,
    M(1, "metadata", ObjectMeta), MR(2, "secrets", ObjectReference),
    MR(3, "imagePullSecrets", LocalObjectReference),
    K(4, BOOL, "automountServiceAccountToken"));

MSG(ServicePort,
    F(1, STRING, "name"), F(2, STRING, "protocol"),
    K(6, STRING, "appProtocol"), K(3, INT32, "port"),
    F(4, INTSTR, "targetPort"), F(5, INT32, "nodePort"));

MSG(ClientIPConfig, K(1, INT32, "timeoutSeconds"));

MSG(SessionAffinityConfig, M(1, "clientIP", ClientIPConfig));

MSG(ServiceSpec,
    MR(1, "ports", ServicePort), F(2, MAP_STRING, "selector"),
    F(3, STRING, "clusterIP"), R(18, STRING, "clusterIPs"),
    F(4, STRING, "type"), R(5, STRING, "externalIPs"),
    F(7, STRING, "sessionAffinity"), F(8, STRING, "loadBalancerIP"),
    R(9, STRING, "loadBalancerSourceRanges"),
    F(10, STRING, "externalName"), F(11, STRING, "externalTrafficPolicy"),
    F(12, INT32, "healthCheckNodePort"),
    F(13, BOOL, "publishNotReadyAddresses"),
    M(14, "sessionAffinityConfig", SessionAffinityConfig),
    R(19, STRING, "ipFamilies"), K(17, STRING, "ipFamilyPolicy"),
    K(20, BOOL, "allocateLoadBalancerNodePorts"),
    K(21, STRING, "loadBalancerClass"),
    K(22, STRING, "internalTrafficPolicy"),
    K(23, STRING, "trafficDistribution"));

MSG(PortStatus,
    K(1, INT32, "port"), K(2, STRING, "protocol"), K(3, STRING, "error"));

MSG(LoadBalancerIngress,
    F(1, STRING, "ip"), F(2, STRING, "hostname"), K(3, STRING, "ipMode"),
    MR(4, "ports", PortStatus));

MSG(LoadBalancerStatus, MR(1, "ingress", LoadBalancerIngress));

MSG(ServiceStatus,
    M(1, "loadBalancer", LoadBalancerStatus),
    MR(2, "conditions", Condition));

MSG(Service,
    M(1, "metadata", ObjectMeta), M(2, "spec", ServiceSpec),
    M(3, "status", ServiceStatus));

/* --- apps/v1 ---------------------------------------------------------------------------- */

MSG(RollingUpdateDeployment,
    F(1, INTSTR, "maxUnavailable"), F(2, INTSTR, "maxSurge"));

MSG(DeploymentStrategy,
    F(1, STRING, "type"), M(2, "rollingUpdate", RollingUpdateDeployment));

MSG(DeploymentSpec,
    K(1, INT32, "replicas"), M(2, "selector", LabelSelector),
    M(3, "template", PodTemplateSpec), M(4, "strategy", DeploymentStrategy),
    F(5, INT32, "minReadySeconds"), K(6, INT32, "revisionHistoryLimit"),
    F(7, BOOL, "paused"), K(9, INT32, "progressDeadlineSeconds"));

MSG(DeploymentCondition,
    K(1, STRING, "type"), K(2, STRING, "status"),
    F(6, TIME, "lastUpdateTime"), F(7, TIME, "lastTransitionTime"),
    F(4, STRING, "reason"), F(5, STRING, "message"));

MSG(DeploymentStatus,
    F(1, INT64, "observedGeneration"), F(2, INT32, "replicas"),
    F(3, INT32, "updatedReplicas"), F(7, INT32, "readyReplicas"),
    F(4, INT32, "availableReplicas"), F(5, INT32, "unavailableReplicas"),
    K(9, INT32, "terminatingReplicas"),
    MR(6, "conditions", DeploymentCondition),
    K(8, INT32, "collisionCount"));

MSG(Deployment,
    M(1, "metadata", ObjectMeta), M(2, "spec", DeploymentSpec),
    M(3, "status", DeploymentStatus));

MSG(ReplicaSetSpec,
    K(1, INT32, "replicas"), F(4, INT32, "minReadySeconds"),
    M(2, "selector", LabelSelector), M(3, "template", PodTemplateSpec));

MSG(ReplicaSetCondition,
    K(1, STRING, "type"), K(2, STRING, "status"),
    F(3, TIME, "lastTransitionTime"), F(4, STRING, "reason"),
    F(5, STRING, "message"));

MSG(ReplicaSetStatus,
    K(1, INT32, "replicas"), F(2, INT32, "fullyLabeledReplicas"),
    F(4, INT32, "readyReplicas"), F(5, INT32, "availableReplicas"),
    K(7, INT32, "terminatingReplicas"),
    F(3, INT64, "observedGeneration"),
    MR(6, "conditions", ReplicaSetCondition));

MSG(ReplicaSet,
    M(1, "metadata", ObjectMeta), M(2, "spec", ReplicaSetSpec),
    M(3, "status", ReplicaSetStatus));

/* --- authorization.k8s.io/v1 ------------------------------------------------------------- */

MSG(ResourceAttributes,
    F(1, STRING, "namespace"), F(2, STRING, "verb"), F(3, STRING, "group"),
    F(4, STRING, "version"), F(5, STRING, "resource"),
    F(6, STRING, "subresource"), F(7, STRING, "name"));

MSG(NonResourceAttributes, F(1, STRING, "path"), F(2, STRING, "verb"));

MSG(SelfSubjectAccessReviewSpec,
    M(1, "resourceAttributes", ResourceAttributes),
    M(2, "nonResourceAttributes", NonResourceAttributes));

MSG(SubjectAccessReviewStatus,
    K(1, BOOL, "allowed"), F(4, BOOL, "denied"), F(2, STRING, "reason"),
    F(3, STRING, "evaluationError"));

MSG(SelfSubjectAccessReview,
    M(1, "metadata", ObjectMeta), M(2, "spec", SelfSubjectAccessReviewSpec),
    M(3, "status", SubjectAccessReviewStatus));

/* --- the kinds ------------------------------------------------------------------------------ */

const struct pb_kind pb_kinds[] = {
	{ "v1", "Namespace", &Namespace },
	{ "v1", "ConfigMap", &ConfigMap },
	{ "v1", "Secret", &Secret },
	{ "v1", "Service", &Service },
	{ "v1", "ServiceAccount", &ServiceAccount },
	{ "apps/v1", "Deployment", &Deployment },
	{ "apps/v1", "ReplicaSet", &ReplicaSet },
	{ "authorization.k8s.io/v1", "SelfSubjectAccessReview",
	    &SelfSubjectAccessReview },
};

const size_t pb_nkinds = sizeof(pb_kinds) / sizeof(pb_kinds[0]);
/* clang-format on */
