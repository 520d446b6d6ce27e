/* admit_schema_core.c — the known fields and Go types of core/v1's shared
 * structures as Kubernetes 1.32 declares them: ObjectMeta, LabelSelector, object
 * references, PodSpec (containers, volumes, probes, security contexts,
 * affinity …) and PodStatus. The deprecated in-tree volume plugins are
 * ANY: accepted whole, never pruned. */
#include "admit.h"

/* --- meta/v1 ------------------------------------------------------------------ */

ADM_TYPE(t_ownerref, "OwnerReference", ADM_F("apiVersion", STR),
    ADM_F("kind", STR), ADM_F("name", STR), ADM_FT("uid", STR, "types.UID"),
    ADM_F("controller", BOOL), ADM_F("blockOwnerDeletion", BOOL));

ADM_TYPE(t_managed, "ManagedFieldsEntry", ADM_F("manager", STR),
    ADM_FT("operation", STR, "v1.ManagedFieldsOperationType"),
    ADM_F("apiVersion", STR), ADM_F("time", TIME), ADM_F("fieldsType", STR),
    ADM_F("fieldsV1", ANY), ADM_F("subresource", STR));

ADM_XTYPE(adm_t_objectmeta, "ObjectMeta", ADM_F("name", STR),
    ADM_F("generateName", STR), ADM_F("namespace", STR), ADM_F("selfLink", STR),
    ADM_FT("uid", STR, "types.UID"), ADM_F("resourceVersion", STR),
    ADM_F("generation", I64), ADM_F("creationTimestamp", TIME),
    ADM_F("deletionTimestamp", TIME), ADM_F("deletionGracePeriodSeconds", I64),
    ADM_M("labels", STR), ADM_M("annotations", STR),
    ADM_LO("ownerReferences", t_ownerref), ADM_L("finalizers", STR),
    ADM_LO("managedFields", t_managed));

ADM_TYPE(t_selreq, "LabelSelectorRequirement", ADM_F("key", STR),
    ADM_FT("operator", STR, "v1.LabelSelectorOperator"), ADM_L("values", STR));

ADM_XTYPE(adm_t_labelselector, "LabelSelector", ADM_M("matchLabels", STR),
    ADM_LO("matchExpressions", t_selreq));

ADM_XTYPE(adm_t_objectreference, "ObjectReference", ADM_F("kind", STR),
    ADM_F("namespace", STR), ADM_F("name", STR),
    ADM_FT("uid", STR, "types.UID"), ADM_F("apiVersion", STR),
    ADM_F("resourceVersion", STR), ADM_F("fieldPath", STR));

ADM_XTYPE(adm_t_localobjectref, "LocalObjectReference", ADM_F("name", STR));

ADM_XTYPE(adm_t_condition, "Condition", ADM_F("type", STR),
    ADM_FT("status", STR, "v1.ConditionStatus"),
    ADM_F("observedGeneration", I64), ADM_F("lastTransitionTime", TIME),
    ADM_F("reason", STR), ADM_F("message", STR));

/* --- containers ------------------------------------------------------------------ */

ADM_TYPE(t_cport, "ContainerPort", ADM_F("name", STR), ADM_F("hostPort", I32),
    ADM_F("containerPort", I32), ADM_FT("protocol", STR, "v1.Protocol"),
    ADM_F("hostIP", STR));

ADM_TYPE(t_cmenvsrc, "ConfigMapEnvSource", ADM_F("name", STR),
    ADM_F("optional", BOOL));
ADM_TYPE(t_secenvsrc, "SecretEnvSource", ADM_F("name", STR),
    ADM_F("optional", BOOL));
ADM_TYPE(t_envfrom, "EnvFromSource", ADM_F("prefix", STR),
    ADM_O("configMapRef", t_cmenvsrc), ADM_O("secretRef", t_secenvsrc));

ADM_TYPE(t_fieldsel, "ObjectFieldSelector", ADM_F("apiVersion", STR),
    ADM_F("fieldPath", STR));
ADM_TYPE(t_ressel, "ResourceFieldSelector", ADM_F("containerName", STR),
    ADM_F("resource", STR), ADM_F("divisor", QTY));
ADM_TYPE(t_cmkeysel, "ConfigMapKeySelector", ADM_F("name", STR),
    ADM_F("key", STR), ADM_F("optional", BOOL));
ADM_TYPE(t_seckeysel, "SecretKeySelector", ADM_F("name", STR),
    ADM_F("key", STR), ADM_F("optional", BOOL));
ADM_TYPE(t_envsrc, "EnvVarSource", ADM_O("fieldRef", t_fieldsel),
    ADM_O("resourceFieldRef", t_ressel), ADM_O("configMapKeyRef", t_cmkeysel),
    ADM_O("secretKeyRef", t_seckeysel));
ADM_TYPE(t_envvar, "EnvVar", ADM_F("name", STR), ADM_F("value", STR),
    ADM_O("valueFrom", t_envsrc));

ADM_TYPE(t_resclaim, "ResourceClaim", ADM_F("name", STR),
    ADM_F("request", STR));
ADM_TYPE(t_resources, "ResourceRequirements", ADM_RL("limits"),
    ADM_RL("requests"), ADM_LO("claims", t_resclaim));
ADM_TYPE(t_resize, "ContainerResizePolicy",
    ADM_FT("resourceName", STR, "v1.ResourceName"),
    ADM_FT("restartPolicy", STR, "v1.ResourceResizeRestartPolicy"));

ADM_TYPE(t_mount, "VolumeMount", ADM_F("name", STR), ADM_F("readOnly", BOOL),
    ADM_FT("recursiveReadOnly", STR, "v1.RecursiveReadOnlyMode"),
    ADM_F("mountPath", STR), ADM_F("subPath", STR),
    ADM_FT("mountPropagation", STR, "v1.MountPropagationMode"),
    ADM_F("subPathExpr", STR));
ADM_TYPE(t_device, "VolumeDevice", ADM_F("name", STR),
    ADM_F("devicePath", STR));

ADM_TYPE(t_exec, "ExecAction", ADM_L("command", STR));
ADM_TYPE(t_header, "HTTPHeader", ADM_F("name", STR), ADM_F("value", STR));
ADM_TYPE(t_httpget, "HTTPGetAction", ADM_F("path", STR), ADM_F("port", INTSTR),
    ADM_F("host", STR), ADM_FT("scheme", STR, "v1.URIScheme"),
    ADM_LO("httpHeaders", t_header));
ADM_TYPE(t_tcp, "TCPSocketAction", ADM_F("port", INTSTR), ADM_F("host", STR));
ADM_TYPE(t_grpc, "GRPCAction", ADM_F("port", I32), ADM_F("service", STR));
ADM_TYPE(t_sleep, "SleepAction", ADM_F("seconds", I64));

ADM_TYPE(t_probe, "Probe", ADM_O("exec", t_exec), ADM_O("httpGet", t_httpget),
    ADM_O("tcpSocket", t_tcp), ADM_O("grpc", t_grpc),
    ADM_F("initialDelaySeconds", I32), ADM_F("timeoutSeconds", I32),
    ADM_F("periodSeconds", I32), ADM_F("successThreshold", I32),
    ADM_F("failureThreshold", I32),
    ADM_F("terminationGracePeriodSeconds", I64));
ADM_TYPE(t_handler, "LifecycleHandler", ADM_O("exec", t_exec),
    ADM_O("httpGet", t_httpget), ADM_O("tcpSocket", t_tcp),
    ADM_O("sleep", t_sleep));
ADM_TYPE(t_lifecycle, "Lifecycle", ADM_O("postStart", t_handler),
    ADM_O("preStop", t_handler));

ADM_TYPE(t_caps, "Capabilities", ADM_L("add", STR), ADM_L("drop", STR));
ADM_TYPE(t_selinux, "SELinuxOptions", ADM_F("user", STR), ADM_F("role", STR),
    ADM_F("type", STR), ADM_F("level", STR));
ADM_TYPE(t_winopts, "WindowsSecurityContextOptions",
    ADM_F("gmsaCredentialSpecName", STR), ADM_F("gmsaCredentialSpec", STR),
    ADM_F("runAsUserName", STR), ADM_F("hostProcess", BOOL));
ADM_TYPE(t_seccomp, "SeccompProfile",
    ADM_FT("type", STR, "v1.SeccompProfileType"),
    ADM_F("localhostProfile", STR));
ADM_TYPE(t_apparmor, "AppArmorProfile",
    ADM_FT("type", STR, "v1.AppArmorProfileType"),
    ADM_F("localhostProfile", STR));
ADM_TYPE(t_secctx, "SecurityContext", ADM_O("capabilities", t_caps),
    ADM_F("privileged", BOOL), ADM_O("seLinuxOptions", t_selinux),
    ADM_O("windowsOptions", t_winopts), ADM_F("runAsUser", I64),
    ADM_F("runAsGroup", I64), ADM_F("runAsNonRoot", BOOL),
    ADM_F("readOnlyRootFilesystem", BOOL),
    ADM_F("allowPrivilegeEscalation", BOOL),
    ADM_FT("procMount", STR, "v1.ProcMountType"),
    ADM_O("seccompProfile", t_seccomp), ADM_O("appArmorProfile", t_apparmor));

#define CONTAINER_FIELDS                                                       \
	ADM_F("name", STR), ADM_F("image", STR), ADM_L("command", STR),        \
	    ADM_L("args", STR), ADM_F("workingDir", STR),                      \
	    ADM_LO("ports", t_cport), ADM_LO("envFrom", t_envfrom),            \
	    ADM_LO("env", t_envvar), ADM_O("resources", t_resources),          \
	    ADM_LO("resizePolicy", t_resize),                                  \
	    ADM_FT("restartPolicy", STR, "v1.ContainerRestartPolicy"),         \
	    ADM_LO("volumeMounts", t_mount),                                   \
	    ADM_LO("volumeDevices", t_device),                                 \
	    ADM_O("livenessProbe", t_probe), ADM_O("readinessProbe", t_probe), \
	    ADM_O("startupProbe", t_probe), ADM_O("lifecycle", t_lifecycle),   \
	    ADM_F("terminationMessagePath", STR),                              \
	    ADM_FT("terminationMessagePolicy", STR,                            \
		"v1.TerminationMessagePolicy"),                                \
	    ADM_FT("imagePullPolicy", STR, "v1.PullPolicy"),                   \
	    ADM_O("securityContext", t_secctx), ADM_F("stdin", BOOL),          \
	    ADM_F("stdinOnce", BOOL), ADM_F("tty", BOOL)

ADM_TYPE(t_container, "Container", CONTAINER_FIELDS);
ADM_TYPE(t_ephemeral, "EphemeralContainer", CONTAINER_FIELDS,
    ADM_F("targetContainerName", STR));

/* --- volumes ---------------------------------------------------------------------- */

ADM_TYPE(t_hostpath, "HostPathVolumeSource", ADM_F("path", STR),
    ADM_FT("type", STR, "v1.HostPathType"));
ADM_TYPE(t_emptydir, "EmptyDirVolumeSource",
    ADM_FT("medium", STR, "v1.StorageMedium"), ADM_F("sizeLimit", QTY));
ADM_TYPE(t_keypath, "KeyToPath", ADM_F("key", STR), ADM_F("path", STR),
    ADM_F("mode", I32));
ADM_TYPE(t_secretvol, "SecretVolumeSource", ADM_F("secretName", STR),
    ADM_LO("items", t_keypath), ADM_F("defaultMode", I32),
    ADM_F("optional", BOOL));
ADM_TYPE(t_cmvol, "ConfigMapVolumeSource", ADM_F("name", STR),
    ADM_LO("items", t_keypath), ADM_F("defaultMode", I32),
    ADM_F("optional", BOOL));
ADM_TYPE(t_nfs, "NFSVolumeSource", ADM_F("server", STR), ADM_F("path", STR),
    ADM_F("readOnly", BOOL));
ADM_TYPE(t_pvcvol, "PersistentVolumeClaimVolumeSource", ADM_F("claimName", STR),
    ADM_F("readOnly", BOOL));
ADM_TYPE(t_dapifile, "DownwardAPIVolumeFile", ADM_F("path", STR),
    ADM_O("fieldRef", t_fieldsel), ADM_O("resourceFieldRef", t_ressel),
    ADM_F("mode", I32));
ADM_TYPE(t_dapivol, "DownwardAPIVolumeSource", ADM_LO("items", t_dapifile),
    ADM_F("defaultMode", I32));
ADM_TYPE(t_secproj, "SecretProjection", ADM_F("name", STR),
    ADM_LO("items", t_keypath), ADM_F("optional", BOOL));
ADM_TYPE(t_cmproj, "ConfigMapProjection", ADM_F("name", STR),
    ADM_LO("items", t_keypath), ADM_F("optional", BOOL));
ADM_TYPE(t_dapiproj, "DownwardAPIProjection", ADM_LO("items", t_dapifile));
ADM_TYPE(t_saproj, "ServiceAccountTokenProjection", ADM_F("audience", STR),
    ADM_F("expirationSeconds", I64), ADM_F("path", STR));
ADM_TYPE(t_ctbproj, "ClusterTrustBundleProjection", ADM_F("name", STR),
    ADM_F("signerName", STR), ADM_O("labelSelector", adm_t_labelselector),
    ADM_F("optional", BOOL), ADM_F("path", STR));
ADM_TYPE(t_projection, "VolumeProjection", ADM_O("secret", t_secproj),
    ADM_O("downwardAPI", t_dapiproj), ADM_O("configMap", t_cmproj),
    ADM_O("serviceAccountToken", t_saproj),
    ADM_O("clusterTrustBundle", t_ctbproj));
ADM_TYPE(t_projected, "ProjectedVolumeSource", ADM_LO("sources", t_projection),
    ADM_F("defaultMode", I32));
ADM_TYPE(t_csi, "CSIVolumeSource", ADM_F("driver", STR),
    ADM_F("readOnly", BOOL), ADM_F("fsType", STR),
    ADM_M("volumeAttributes", STR),
    ADM_O("nodePublishSecretRef", adm_t_localobjectref));
ADM_TYPE(t_image, "ImageVolumeSource", ADM_F("reference", STR),
    ADM_FT("pullPolicy", STR, "v1.PullPolicy"));

ADM_TYPE(t_volume, "Volume", ADM_F("name", STR), ADM_O("hostPath", t_hostpath),
    ADM_O("emptyDir", t_emptydir), ADM_F("gcePersistentDisk", ANY),
    ADM_F("awsElasticBlockStore", ANY), ADM_F("gitRepo", ANY),
    ADM_O("secret", t_secretvol), ADM_O("nfs", t_nfs), ADM_F("iscsi", ANY),
    ADM_F("glusterfs", ANY), ADM_O("persistentVolumeClaim", t_pvcvol),
    ADM_F("rbd", ANY), ADM_F("flexVolume", ANY), ADM_F("cinder", ANY),
    ADM_F("cephfs", ANY), ADM_F("flocker", ANY),
    ADM_O("downwardAPI", t_dapivol), ADM_F("fc", ANY), ADM_F("azureFile", ANY),
    ADM_O("configMap", t_cmvol), ADM_F("vsphereVolume", ANY),
    ADM_F("quobyte", ANY), ADM_F("azureDisk", ANY),
    ADM_F("photonPersistentDisk", ANY), ADM_O("projected", t_projected),
    ADM_F("portworxVolume", ANY), ADM_F("scaleIO", ANY),
    ADM_F("storageos", ANY), ADM_O("csi", t_csi), ADM_F("ephemeral", ANY),
    ADM_O("image", t_image));

/* --- scheduling ------------------------------------------------------------------- */

ADM_TYPE(t_nodereq, "NodeSelectorRequirement", ADM_F("key", STR),
    ADM_FT("operator", STR, "v1.NodeSelectorOperator"), ADM_L("values", STR));
ADM_TYPE(t_nodeterm, "NodeSelectorTerm", ADM_LO("matchExpressions", t_nodereq),
    ADM_LO("matchFields", t_nodereq));
ADM_TYPE(t_nodesel, "NodeSelector", ADM_LO("nodeSelectorTerms", t_nodeterm));
ADM_TYPE(t_prefterm, "PreferredSchedulingTerm", ADM_F("weight", I32),
    ADM_O("preference", t_nodeterm));
ADM_TYPE(t_nodeaff, "NodeAffinity",
    ADM_O("requiredDuringSchedulingIgnoredDuringExecution", t_nodesel),
    ADM_LO("preferredDuringSchedulingIgnoredDuringExecution", t_prefterm));
ADM_TYPE(t_podterm, "PodAffinityTerm",
    ADM_O("labelSelector", adm_t_labelselector), ADM_L("namespaces", STR),
    ADM_F("topologyKey", STR), ADM_O("namespaceSelector", adm_t_labelselector),
    ADM_L("matchLabelKeys", STR), ADM_L("mismatchLabelKeys", STR));
ADM_TYPE(t_wpodterm, "WeightedPodAffinityTerm", ADM_F("weight", I32),
    ADM_O("podAffinityTerm", t_podterm));
ADM_TYPE(t_podaff, "PodAffinity",
    ADM_LO("requiredDuringSchedulingIgnoredDuringExecution", t_podterm),
    ADM_LO("preferredDuringSchedulingIgnoredDuringExecution", t_wpodterm));
ADM_TYPE(t_podantiaff, "PodAntiAffinity",
    ADM_LO("requiredDuringSchedulingIgnoredDuringExecution", t_podterm),
    ADM_LO("preferredDuringSchedulingIgnoredDuringExecution", t_wpodterm));
ADM_TYPE(t_affinity, "Affinity", ADM_O("nodeAffinity", t_nodeaff),
    ADM_O("podAffinity", t_podaff), ADM_O("podAntiAffinity", t_podantiaff));
ADM_TYPE(t_toleration, "Toleration", ADM_F("key", STR),
    ADM_FT("operator", STR, "v1.TolerationOperator"), ADM_F("value", STR),
    ADM_FT("effect", STR, "v1.TaintEffect"), ADM_F("tolerationSeconds", I64));
ADM_TYPE(t_spread, "TopologySpreadConstraint", ADM_F("maxSkew", I32),
    ADM_F("topologyKey", STR),
    ADM_FT("whenUnsatisfiable", STR, "v1.UnsatisfiableConstraintAction"),
    ADM_O("labelSelector", adm_t_labelselector), ADM_F("minDomains", I32),
    ADM_FT("nodeAffinityPolicy", STR, "v1.NodeInclusionPolicy"),
    ADM_FT("nodeTaintsPolicy", STR, "v1.NodeInclusionPolicy"),
    ADM_L("matchLabelKeys", STR));

/* --- the rest of PodSpec -------------------------------------------------------------- */

ADM_TYPE(t_sysctl, "Sysctl", ADM_F("name", STR), ADM_F("value", STR));
ADM_TYPE(t_podsecctx, "PodSecurityContext", ADM_O("seLinuxOptions", t_selinux),
    ADM_O("windowsOptions", t_winopts), ADM_F("runAsUser", I64),
    ADM_F("runAsGroup", I64), ADM_F("runAsNonRoot", BOOL),
    ADM_L("supplementalGroups", I64),
    ADM_FT("supplementalGroupsPolicy", STR, "v1.SupplementalGroupsPolicy"),
    ADM_F("fsGroup", I64), ADM_LO("sysctls", t_sysctl),
    ADM_FT("fsGroupChangePolicy", STR, "v1.PodFSGroupChangePolicy"),
    ADM_O("seccompProfile", t_seccomp), ADM_O("appArmorProfile", t_apparmor),
    ADM_FT("seLinuxChangePolicy", STR, "v1.PodSELinuxChangePolicy"));
ADM_TYPE(t_hostalias, "HostAlias", ADM_F("ip", STR), ADM_L("hostnames", STR));
ADM_TYPE(t_dnsopt, "PodDNSConfigOption", ADM_F("name", STR),
    ADM_F("value", STR));
ADM_TYPE(t_dnscfg, "PodDNSConfig", ADM_L("nameservers", STR),
    ADM_L("searches", STR), ADM_LO("options", t_dnsopt));
ADM_TYPE(t_readiness, "PodReadinessGate",
    ADM_FT("conditionType", STR, "v1.PodConditionType"));
ADM_TYPE(t_os, "PodOS", ADM_FT("name", STR, "v1.OSName"));
ADM_TYPE(t_schedgate, "PodSchedulingGate", ADM_F("name", STR));
ADM_TYPE(t_podclaim, "PodResourceClaim", ADM_F("name", STR),
    ADM_F("resourceClaimName", STR), ADM_F("resourceClaimTemplateName", STR));

ADM_XTYPE(adm_t_podspec, "PodSpec", ADM_LO("volumes", t_volume),
    ADM_LO("initContainers", t_container), ADM_LO("containers", t_container),
    ADM_LO("ephemeralContainers", t_ephemeral),
    ADM_FT("restartPolicy", STR, "v1.RestartPolicy"),
    ADM_F("terminationGracePeriodSeconds", I64),
    ADM_F("activeDeadlineSeconds", I64),
    ADM_FT("dnsPolicy", STR, "v1.DNSPolicy"), ADM_M("nodeSelector", STR),
    ADM_F("serviceAccountName", STR), ADM_F("serviceAccount", STR),
    ADM_F("automountServiceAccountToken", BOOL), ADM_F("nodeName", STR),
    ADM_F("hostNetwork", BOOL), ADM_F("hostPID", BOOL), ADM_F("hostIPC", BOOL),
    ADM_F("shareProcessNamespace", BOOL), ADM_O("securityContext", t_podsecctx),
    ADM_LO("imagePullSecrets", adm_t_localobjectref), ADM_F("hostname", STR),
    ADM_F("subdomain", STR), ADM_O("affinity", t_affinity),
    ADM_F("schedulerName", STR), ADM_LO("tolerations", t_toleration),
    ADM_LO("hostAliases", t_hostalias), ADM_F("priorityClassName", STR),
    ADM_F("priority", I32), ADM_O("dnsConfig", t_dnscfg),
    ADM_LO("readinessGates", t_readiness), ADM_F("runtimeClassName", STR),
    ADM_F("enableServiceLinks", BOOL),
    ADM_FT("preemptionPolicy", STR, "v1.PreemptionPolicy"), ADM_RL("overhead"),
    ADM_LO("topologySpreadConstraints", t_spread),
    ADM_F("setHostnameAsFQDN", BOOL), ADM_O("os", t_os),
    ADM_F("hostUsers", BOOL), ADM_LO("schedulingGates", t_schedgate),
    ADM_LO("resourceClaims", t_podclaim), ADM_O("resources", t_resources));

ADM_XTYPE(adm_t_podtemplatespec, "PodTemplateSpec",
    ADM_O("metadata", adm_t_objectmeta), ADM_O("spec", adm_t_podspec));

/* --- PodStatus -------------------------------------------------------------------------- */

ADM_TYPE(t_podcond, "PodCondition", ADM_FT("type", STR, "v1.PodConditionType"),
    ADM_FT("status", STR, "v1.ConditionStatus"), ADM_F("lastProbeTime", TIME),
    ADM_F("lastTransitionTime", TIME), ADM_F("reason", STR),
    ADM_F("message", STR));
ADM_TYPE(t_ip, "PodIP", ADM_F("ip", STR));
ADM_TYPE(t_hostip, "HostIP", ADM_F("ip", STR));
ADM_TYPE(t_waiting, "ContainerStateWaiting", ADM_F("reason", STR),
    ADM_F("message", STR));
ADM_TYPE(t_running, "ContainerStateRunning", ADM_F("startedAt", TIME));
ADM_TYPE(t_terminated, "ContainerStateTerminated", ADM_F("exitCode", I32),
    ADM_F("signal", I32), ADM_F("reason", STR), ADM_F("message", STR),
    ADM_F("startedAt", TIME), ADM_F("finishedAt", TIME),
    ADM_F("containerID", STR));
ADM_TYPE(t_cstate, "ContainerState", ADM_O("waiting", t_waiting),
    ADM_O("running", t_running), ADM_O("terminated", t_terminated));
ADM_TYPE(t_mountstatus, "VolumeMountStatus", ADM_F("name", STR),
    ADM_F("mountPath", STR), ADM_F("readOnly", BOOL),
    ADM_FT("recursiveReadOnly", STR, "v1.RecursiveReadOnlyMode"));
ADM_TYPE(t_cstatus, "ContainerStatus", ADM_F("name", STR),
    ADM_O("state", t_cstate), ADM_O("lastState", t_cstate),
    ADM_F("ready", BOOL), ADM_F("restartCount", I32), ADM_F("image", STR),
    ADM_F("imageID", STR), ADM_F("containerID", STR), ADM_F("started", BOOL),
    ADM_RL("allocatedResources"), ADM_O("resources", t_resources),
    ADM_LO("volumeMounts", t_mountstatus), ADM_F("user", ANY),
    ADM_L("allocatedResourcesStatus", ANY));

ADM_XTYPE(adm_t_podstatus, "PodStatus", ADM_FT("phase", STR, "v1.PodPhase"),
    ADM_LO("conditions", t_podcond), ADM_F("message", STR),
    ADM_F("reason", STR), ADM_F("nominatedNodeName", STR), ADM_F("hostIP", STR),
    ADM_LO("hostIPs", t_hostip), ADM_F("podIP", STR), ADM_LO("podIPs", t_ip),
    ADM_F("startTime", TIME), ADM_LO("initContainerStatuses", t_cstatus),
    ADM_LO("containerStatuses", t_cstatus),
    ADM_FT("qosClass", STR, "v1.PodQOSClass"),
    ADM_LO("ephemeralContainerStatuses", t_cstatus),
    ADM_FT("resize", STR, "v1.PodResizeStatus"),
    ADM_L("resourceClaimStatuses", ANY));
