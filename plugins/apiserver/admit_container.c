/* admit_container.c — one container (validateContainerCommon): its name
 * and image, ports, env and envFrom, volume mounts, pull and termination
 * message policies, resources and security context; and host port
 * collisions across containers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"

static const char *const protocols[] = { "SCTP", "TCP", "UDP", NULL };

/* --- ports ---------------------------------------------------------------- */

static void port_num(struct api_error *e, const char *path, long long v)
{
	if (v < 1 || v > 65535)
		adm_invalid_int(e, path, v,
		    "must be between 1 and 65535, inclusive");
}

static void protocol(const json_t *port, const char *base, struct api_error *e)
{
	char p[ADM_PATH];
	const char *proto = adm_str(port, "protocol");

	adm_path(p, "%s.protocol", base);
	if (adm_is_empty(proto))
		adm_required(e, p, "");
	else if (strcmp(proto, "TCP") && strcmp(proto, "UDP") &&
	    strcmp(proto, "SCTP"))
		adm_unsupported(e, p, proto, protocols);
}

static void container_ports(const json_t *ports, const char *path,
    struct api_error *e)
{
	json_t *names = json_object();
	char base[ADM_PATH], p[ADM_PATH];
	size_t i;
	json_t *port;
	long long v;

	json_array_foreach(ports, i, port) {
		const char *name = adm_str(port, "name");
		adm_path(base, "%s[%zu]", path, i);
		if (!adm_is_empty(name)) {
			struct adm_msgs m = { 0 };
			adm_port_name(name, &m);
			adm_path(p, "%s.name", base);
			if (m.n)
				adm_invalid_msgs(e, p, name, &m);
			else if (json_object_get(names, name))
				adm_duplicate_str(e, p, name);
			else
				json_object_set_new(names, name, json_true());
		}
		adm_path(p, "%s.containerPort", base);
		if (!adm_int(port, "containerPort", &v) || v == 0)
			adm_required(e, p, "");
		else
			port_num(e, p, v);
		if (adm_int(port, "hostPort", &v) && v)
			port_num(e, adm_path(p, "%s.hostPort", base), v);
		protocol(port, base, e);
	}
	json_decref(names);
}

void adm_port_num_or_name(const json_t *port, const char *path,
    struct api_error *e)
{
	if (json_is_integer(port)) {
		port_num(e, path, json_integer_value(port));
	} else if (json_is_string(port)) {
		struct adm_msgs m = { 0 };
		adm_port_name(json_string_value(port), &m);
		adm_invalid_msgs(e, path, json_string_value(port), &m);
	} else {
		port_num(e, path, 0);
	}
}

/* Host ports must not collide: "<protocol>/<hostIP>/<port>". */
void adm_host_ports(const json_t *cs, const char *path, json_t *seen,
    struct api_error *e)
{
	char p[ADM_PATH], key[300];
	size_t i, j;
	json_t *c, *port;
	long long hp;

	json_array_foreach(cs, i, c) {
		json_array_foreach(adm_arr(c, "ports"), j, port) {
			if (!adm_int(port, "hostPort", &hp) || !hp)
				continue;
			snprintf(key, sizeof key, "%s/%s/%lld",
			    adm_str(port, "protocol") ?: "",
			    adm_str(port, "hostIP") ?: "", hp);
			if (json_object_get(seen, key))
				adm_duplicate_str(e,
				    adm_path(p, "%s[%zu].ports[%zu].hostPort",
					path, i, j),
				    key);
			else
				json_object_set_new(seen, key, json_true());
		}
	}
}

/* --- env ------------------------------------------------------------------ */

static const char *const env_field_paths[] = { "metadata.name",
	"metadata.namespace", "metadata.uid", "spec.nodeName",
	"spec.serviceAccountName", "status.hostIP", "status.hostIPs",
	"status.podIP", "status.podIPs", NULL };

static const char *const known_field_labels[] = { "metadata.annotations",
	"metadata.labels", "metadata.name", "metadata.namespace",
	"metadata.uid", "spec.nodeName", "spec.restartPolicy",
	"spec.serviceAccountName", "spec.schedulerName", "status.phase",
	"status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
	"spec.host", NULL };

/* "metadata.labels['key']" -> path and subscript. */
static bool subscripted(const char *fp, char *path, size_t plen, char *sub,
    size_t slen)
{
	const char *open = strstr(fp, "['");
	size_t n = strlen(fp);

	if (!open || n < 2 || strcmp(fp + n - 2, "']"))
		return false;
	snprintf(path, plen, "%.*s", (int)(open - fp), fp);
	snprintf(sub, slen, "%.*s", (int)(n - 2 - (size_t)(open - fp) - 2),
	    open + 2);
	return true;
}

void adm_field_ref(const json_t *fs, const char *path, const char *const *exprs,
    struct api_error *e)
{
	char p[ADM_PATH], fp_path[256], sub[256], d[400];
	const char *av = adm_str(fs, "apiVersion");
	const char *fp = adm_str(fs, "fieldPath");

	if (adm_is_empty(av)) {
		adm_required(e, adm_path(p, "%s.apiVersion", path), "");
		return;
	}
	if (adm_is_empty(fp)) {
		adm_required(e, adm_path(p, "%s.fieldPath", path), "");
		return;
	}
	adm_path(p, "%s.fieldPath", path);
	if (strcmp(av, "v1")) {
		snprintf(d, sizeof d,
		    "error converting fieldPath: unsupported pod version: %s",
		    av);
		adm_invalid_str(e, p, fp, d);
		return;
	}
	if (subscripted(fp, fp_path, sizeof fp_path, sub, sizeof sub)) {
		struct adm_msgs m = { 0 };
		if (!strcmp(fp_path, "metadata.annotations") ||
		    !strcmp(fp_path, "metadata.labels")) {
			adm_qualified_name(sub, &m);
			adm_invalid_msgs(e, path, sub, &m);
		} else {
			snprintf(d, sizeof d,
			    "error converting fieldPath: field "
			    "label does not support subscript: %s",
			    fp);
			adm_invalid_str(e, p, fp, d);
		}
		return;
	}
	if (!adm_in_list(fp, known_field_labels)) {
		snprintf(d, sizeof d,
		    "error converting fieldPath: field label not supported: %s",
		    fp);
		adm_invalid_str(e, p, fp, d);
		return;
	}
	if (!adm_in_list(!strcmp(fp, "spec.host") ? "spec.nodeName" : fp,
		exprs))
		adm_unsupported(e, p, fp, exprs);
}

static void key_selector(const json_t *s, const char *path, struct api_error *e)
{
	char p[ADM_PATH];
	const char *name = adm_str(s, "name") ?: "";
	const char *key = adm_str(s, "key");
	struct adm_msgs m = { 0 };

	adm_name_subdomain(name, false, &m);
	adm_invalid_msgs(e, adm_path(p, "%s.name", path), name, &m);
	adm_path(p, "%s.key", path);
	if (adm_is_empty(key)) {
		adm_required(e, p, "");
		return;
	}
	m.n = 0;
	adm_config_key(key, &m);
	adm_invalid_msgs(e, p, key, &m);
}

static void resource_field_ref(const json_t *r, const char *path, bool volume,
    struct api_error *e)
{
	static const char *const exprs[] = { "limits.cpu",
		"limits.ephemeral-storage", "limits.memory", "requests.cpu",
		"requests.ephemeral-storage", "requests.memory", NULL };
	char p[ADM_PATH];
	const char *res = adm_str(r, "resource");

	if (volume && adm_is_empty(adm_str(r, "containerName")))
		adm_required(e, adm_path(p, "%s.containerName", path), "");
	else if (adm_is_empty(res))
		adm_required(e, adm_path(p, "%s.resource", path), "");
	else if (!adm_in_list(res, exprs) &&
	    strncmp(res, "requests.hugepages-", 19) &&
	    strncmp(res, "limits.hugepages-", 17))
		adm_unsupported(e, adm_path(p, "%s.resource", path), res,
		    exprs);
}

void adm_resource_field_ref(const json_t *r, const char *path, bool volume,
    struct api_error *e)
{
	resource_field_ref(r, path, volume, e);
}

static void value_from(const json_t *ev, const char *path, struct api_error *e)
{
	json_t *vf = adm_obj(ev, "valueFrom");
	char p[ADM_PATH];
	int n = 0;
	json_t *x;

	if (!vf)
		return;
	if ((x = adm_obj(vf, "fieldRef")) && ++n)
		adm_field_ref(x, adm_path(p, "%s.fieldRef", path),
		    env_field_paths, e);
	if ((x = adm_obj(vf, "resourceFieldRef")) && ++n)
		resource_field_ref(x, adm_path(p, "%s.resourceFieldRef", path),
		    false, e);
	if ((x = adm_obj(vf, "configMapKeyRef")) && ++n)
		key_selector(x, adm_path(p, "%s.configMapKeyRef", path), e);
	if ((x = adm_obj(vf, "secretKeyRef")) && ++n)
		key_selector(x, adm_path(p, "%s.secretKeyRef", path), e);
	if (!n)
		adm_invalid_str(e, path, "",
		    "must specify one of: `fieldRef`, "
		    "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`");
	else if (!adm_is_empty(adm_str(ev, "value")))
		adm_invalid_str(e, path, "",
		    "may not be specified when `value` is not empty");
	else if (n > 1)
		adm_invalid_str(e, path, "",
		    "may not have more than one field specified at a time");
}

static void env(const json_t *vars, const char *path, struct api_error *e)
{
	char base[ADM_PATH], p[ADM_PATH];
	size_t i;
	json_t *ev;

	json_array_foreach(vars, i, ev) {
		const char *name = adm_str(ev, "name");
		adm_path(base, "%s[%zu]", path, i);
		adm_path(p, "%s.name", base);
		if (adm_is_empty(name)) {
			adm_required(e, p, "");
		} else {
			struct adm_msgs m = { 0 };
			adm_env_name(name, &m);
			adm_invalid_msgs(e, p, name, &m);
		}
		value_from(ev, adm_path(p, "%s.valueFrom", base), e);
	}
}

static void env_source(const json_t *src, const char *path, struct api_error *e)
{
	char p[ADM_PATH];
	const char *name = adm_str(src, "name");
	struct adm_msgs m = { 0 };

	adm_path(p, "%s.name", path);
	if (adm_is_empty(name)) {
		adm_required(e, p, "");
		return;
	}
	adm_name_subdomain(name, true, &m);
	adm_invalid_msgs(e, p, name, &m);
}

static void env_from(const json_t *list, const char *path, struct api_error *e)
{
	char base[ADM_PATH], p[ADM_PATH];
	size_t i;
	json_t *ef, *x;

	json_array_foreach(list, i, ef) {
		const char *prefix = adm_str(ef, "prefix");
		int n = 0;
		adm_path(base, "%s[%zu]", path, i);
		if (!adm_is_empty(prefix)) {
			struct adm_msgs m = { 0 };
			adm_env_name(prefix, &m);
			adm_invalid_msgs(e, adm_path(p, "%s.prefix", base),
			    prefix, &m);
		}
		if ((x = adm_obj(ef, "configMapRef")) && ++n)
			env_source(x, adm_path(p, "%s.configMapRef", base), e);
		if ((x = adm_obj(ef, "secretRef")) && ++n)
			env_source(x, adm_path(p, "%s.secretRef", base), e);
		if (!n)
			adm_invalid_str(e, path, "",
			    "must specify one of: "
			    "`configMapRef` or `secretRef`");
		else if (n > 1)
			adm_invalid_str(e, path, "",
			    "may not have more than one "
			    "field specified at a time");
	}
}

/* --- volume mounts --------------------------------------------------------- */

static void mount_propagation(const json_t *mnt, const json_t *c,
    const char *path, struct api_error *e)
{
	static const char *const modes[] = { "Bidirectional", "HostToContainer",
		"None", NULL };
	const char *mp = adm_str(mnt, "mountPropagation");

	if (!mp)
		return;
	if (!adm_in_list(mp, modes))
		adm_unsupported(e, path, mp, modes);
	if (!strcmp(mp, "Bidirectional") &&
	    !adm_bool(adm_obj(c, "securityContext"), "privileged"))
		adm_forbidden(e, path,
		    "Bidirectional mount propagation is "
		    "available only to privileged containers");
}

static void recursive_read_only(const json_t *mnt, const char *path,
    struct api_error *e)
{
	static const char *const modes[] = { "Disabled", "Enabled",
		"IfPossible", NULL };
	const char *rro = adm_str(mnt, "recursiveReadOnly");
	const char *mp = adm_str(mnt, "mountPropagation");

	if (!rro || !strcmp(rro, "Disabled"))
		return;
	if (!adm_in_list(rro, modes)) {
		adm_unsupported(e, path, rro, modes);
		return;
	}
	if (!adm_bool(mnt, "readOnly"))
		adm_forbidden(e, path,
		    "may only be specified when readOnly is true");
	if (mp && strcmp(mp, "None"))
		adm_forbidden(e, path,
		    "may only be specified when "
		    "mountPropagation is None or not specified");
}

static void volume_mounts(const json_t *mounts, const json_t *c,
    struct adm_podctx *ctx, const char *path, struct api_error *e)
{
	json_t *points = json_object();
	char base[ADM_PATH], p[ADM_PATH];
	size_t i;
	json_t *mnt;

	json_array_foreach(mounts, i, mnt) {
		const char *name = adm_str(mnt, "name") ?: "";
		const char *mp = adm_str(mnt, "mountPath") ?: "";
		const char *sub = adm_str(mnt, "subPath");
		adm_path(base, "%s[%zu]", path, i);
		if (!*name)
			adm_required(e, adm_path(p, "%s.name", base), "");
		if (!json_object_get(ctx->volumes, name))
			adm_notfound_str(e, adm_path(p, "%s.name", base), name);
		if (!*mp)
			adm_required(e, adm_path(p, "%s.mountPath", base), "");
		if (json_object_get(points, mp))
			adm_invalid_str(e, adm_path(p, "%s.mountPath", base),
			    mp, "must be unique");
		json_object_set_new(points, mp, json_true());
		if (!adm_is_empty(sub))
			adm_local_path(sub, adm_path(p, "%s.subPath", path),
			    false, e);
		mount_propagation(mnt, c,
		    adm_path(p, "%s.mountPropagation", path), e);
		recursive_read_only(mnt,
		    adm_path(p, "%s.recursiveReadOnly", path), e);
	}
	json_decref(points);
}

/* --- the rest of a container ------------------------------------------------ */

static void pull_policy(const json_t *c, const char *path, struct api_error *e)
{
	static const char *const policies[] = { "Always", "IfNotPresent",
		"Never", NULL };
	const char *pp = adm_str(c, "imagePullPolicy");

	if (adm_is_empty(pp))
		adm_required(e, path, "");
	else if (!adm_in_list(pp, policies))
		adm_unsupported(e, path, pp, policies);
}

static void message_policy(const json_t *c, const char *path,
    struct api_error *e)
{
	static const char *const policies[] = { "File", "FallbackToLogsOnError",
		NULL };
	const char *tp = adm_str(c, "terminationMessagePolicy");

	if (adm_is_empty(tp))
		adm_required(e, path, "");
	else if (!adm_in_list(tp, policies))
		adm_unsupported(e, path, tp, policies);
}

/* validateContainerCommon */
void adm_container_common(const json_t *c, struct adm_podctx *ctx,
    const char *path, struct api_error *e)
{
	char p[ADM_PATH];
	const char *name = adm_str(c, "name");

	adm_path(p, "%s.name", path);
	if (adm_is_empty(name)) {
		adm_required(e, p, "");
	} else {
		struct adm_msgs m = { 0 };
		adm_dns1123_label(name, &m);
		adm_invalid_msgs(e, p, name, &m);
	}
	if (adm_is_empty(adm_str(c, "image")))
		adm_required(e, adm_path(p, "%s.image", path), "");
	message_policy(c, adm_path(p, "%s.terminationMessagePolicy", path), e);
	container_ports(adm_arr(c, "ports"), adm_path(p, "%s.ports", path), e);
	env(adm_arr(c, "env"), adm_path(p, "%s.env", path), e);
	env_from(adm_arr(c, "envFrom"), adm_path(p, "%s.envFrom", path), e);
	volume_mounts(adm_arr(c, "volumeMounts"), c, ctx,
	    adm_path(p, "%s.volumeMounts", path), e);
	pull_policy(c, adm_path(p, "%s.imagePullPolicy", path), e);
	adm_resources_validate(adm_obj(c, "resources"),
	    adm_path(p, "%s.resources", path), e);
	adm_security_validate(adm_obj(c, "securityContext"),
	    adm_path(p, "%s.securityContext", path), e);
}
