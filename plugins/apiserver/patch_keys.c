/* plugins/apiserver/patch_keys.c — Kubernetes' strategic-merge tags for
 * the built-in kinds.
 *
 * Taken from the patchStrategy/patchMergeKey struct tags of k8s.io/api
 * 1.32 (core/v1, apps/v1, meta/v1). Only fields on the way to a tagged
 * field are listed; every other list is atomic and every other map merges.
 * Lists that Kubernetes marks listType=map without a patch strategy
 * (tolerations, taints, containerStatuses, endpoint subsets, …) are
 * atomic for strategic merge, as they are there.
 */
#include <string.h>

#include "patch.h"

#define END                                                                    \
	{                                                                      \
		NULL, SMP_DEFAULT, false, NULL, NULL                           \
	}
#define MERGE_BY(n, key, t)                                                    \
	{                                                                      \
		n, SMP_MERGE, false, key, t                                    \
	}
#define SET_OF(n)                                                              \
	{                                                                      \
		n, SMP_MERGE, false, NULL, NULL                                \
	}
#define FIELD(n, t)                                                            \
	{                                                                      \
		n, SMP_DEFAULT, false, NULL, t                                 \
	}

/* --- meta/v1 -------------------------------------------------------------- */

static const struct smp_field object_meta_fields[] = {
	SET_OF("finalizers"),
	MERGE_BY("ownerReferences", "uid", NULL),
	END,
};
static const struct smp_type object_meta = { "ObjectMeta", object_meta_fields };

/* Status types whose only tagged list is conditions (by type). */
static const struct smp_field conditions_fields[] = {
	MERGE_BY("conditions", "type", NULL),
	END,
};
static const struct smp_type conditions_status = { "Status",
	conditions_fields };

/* --- core/v1 pods --------------------------------------------------------- */

/* Container and EphemeralContainer carry the same tags. */
static const struct smp_field container_fields[] = {
	MERGE_BY("ports", "containerPort", NULL),
	MERGE_BY("env", "name", NULL),
	MERGE_BY("volumeMounts", "mountPath", NULL),
	MERGE_BY("volumeDevices", "devicePath", NULL),
	END,
};
static const struct smp_type container = { "Container", container_fields };

static const struct smp_field pod_spec_fields[] = {
	{ "volumes", SMP_MERGE, true, "name", NULL },
	MERGE_BY("initContainers", "name", &container),
	MERGE_BY("containers", "name", &container),
	MERGE_BY("ephemeralContainers", "name", &container),
	MERGE_BY("imagePullSecrets", "name", NULL),
	MERGE_BY("hostAliases", "ip", NULL),
	MERGE_BY("topologySpreadConstraints", "topologyKey", NULL),
	MERGE_BY("schedulingGates", "name", NULL),
	{ "resourceClaims", SMP_MERGE, true, "name", NULL },
	END,
};
static const struct smp_type pod_spec = { "PodSpec", pod_spec_fields };

static const struct smp_field pod_status_fields[] = {
	MERGE_BY("conditions", "type", NULL),
	MERGE_BY("podIPs", "ip", NULL),
	MERGE_BY("hostIPs", "ip", NULL),
	{ "resourceClaimStatuses", SMP_MERGE, true, "name", NULL },
	END,
};
static const struct smp_type pod_status = { "PodStatus", pod_status_fields };

static const struct smp_field pod_fields[] = {
	FIELD("metadata", &object_meta),
	FIELD("spec", &pod_spec),
	FIELD("status", &pod_status),
	END,
};
static const struct smp_type pod = { "Pod", pod_fields };

static const struct smp_field pod_template_spec_fields[] = {
	FIELD("metadata", &object_meta),
	FIELD("spec", &pod_spec),
	END,
};
static const struct smp_type pod_template_spec = { "PodTemplateSpec",
	pod_template_spec_fields };

/* --- apps/v1 -------------------------------------------------------------- */

static const struct smp_field deployment_spec_fields[] = {
	FIELD("template", &pod_template_spec),
	{ "strategy", SMP_DEFAULT, true, NULL, NULL },
	END,
};
static const struct smp_type deployment_spec = { "DeploymentSpec",
	deployment_spec_fields };

static const struct smp_field deployment_fields[] = {
	FIELD("metadata", &object_meta),
	FIELD("spec", &deployment_spec),
	FIELD("status", &conditions_status),
	END,
};
static const struct smp_type deployment = { "Deployment", deployment_fields };

static const struct smp_field replica_set_spec_fields[] = {
	FIELD("template", &pod_template_spec),
	END,
};
static const struct smp_type replica_set_spec = { "ReplicaSetSpec",
	replica_set_spec_fields };

static const struct smp_field replica_set_fields[] = {
	FIELD("metadata", &object_meta),
	FIELD("spec", &replica_set_spec),
	FIELD("status", &conditions_status),
	END,
};
static const struct smp_type replica_set = { "ReplicaSet", replica_set_fields };

/* --- core/v1, the rest ---------------------------------------------------- */

static const struct smp_field node_spec_fields[] = {
	SET_OF("podCIDRs"),
	END,
};
static const struct smp_type node_spec = { "NodeSpec", node_spec_fields };

static const struct smp_field node_status_fields[] = {
	MERGE_BY("conditions", "type", NULL),
	MERGE_BY("addresses", "type", NULL),
	END,
};
static const struct smp_type node_status = { "NodeStatus", node_status_fields };

static const struct smp_field node_fields[] = {
	FIELD("metadata", &object_meta),
	FIELD("spec", &node_spec),
	FIELD("status", &node_status),
	END,
};
static const struct smp_type node = { "Node", node_fields };

static const struct smp_field service_spec_fields[] = {
	MERGE_BY("ports", "port", NULL),
	END,
};
static const struct smp_type service_spec = { "ServiceSpec",
	service_spec_fields };

static const struct smp_field service_fields[] = {
	FIELD("metadata", &object_meta),
	FIELD("spec", &service_spec),
	FIELD("status", &conditions_status),
	END,
};
static const struct smp_type service = { "Service", service_fields };

static const struct smp_field namespace_fields[] = {
	FIELD("metadata", &object_meta),
	FIELD("status", &conditions_status),
	END,
};
static const struct smp_type namespace_ = { "Namespace", namespace_fields };

static const struct smp_field service_account_fields[] = {
	FIELD("metadata", &object_meta),
	MERGE_BY("secrets", "name", NULL),
	END,
};
static const struct smp_type service_account = { "ServiceAccount",
	service_account_fields };

/* ConfigMap, Secret, Endpoints, EndpointSlice, Event, Lease, Scale, …:
 * nothing tagged but their metadata. */
static const struct smp_field object_fields[] = {
	FIELD("metadata", &object_meta),
	END,
};
static const struct smp_type object = { "Object", object_fields };

static const struct {
	const char *kind;
	const struct smp_type *type;
} kinds[] = {
	{ "Pod", &pod },
	{ "Deployment", &deployment },
	{ "ReplicaSet", &replica_set },
	{ "Node", &node },
	{ "Service", &service },
	{ "Namespace", &namespace_ },
	{ "ServiceAccount", &service_account },
};

const struct smp_type *smp_kind_type(const char *kind)
{
	for (size_t i = 0; kind && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i].kind, kind) == 0)
			return kinds[i].type;
	return &object;
}

const struct smp_field *smp_type_field(const struct smp_type *t,
    const char *name)
{
	if (t == NULL)
		return NULL;
	for (const struct smp_field *f = t->fields; f->name; f++)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}
