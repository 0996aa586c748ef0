#include "acl.h"
#include "handlers.h"
#include "instance.h"
#include "templates.h"
#include "names.h"
#include "routes.h"
#include "settings.h"

const struct vd_route vd_routes[] = {
	{ "GET", "/api/v1/openapi.json", vd_h_openapi, VD_ROLE_PUBLIC, VD_BODY_NONE, 0, NULL,
	  "this API described as OpenAPI 3, built from the route table" },
	{ "GET", "/api/v1/system/health", vd_h_system_health, VD_ROLE_PUBLIC, VD_BODY_NONE, 0, NULL,
	  "health of the store and the Docker engine" },
	{ "GET", "/api/v1/system/info", vd_h_system_info, VD_ROLE_VIEWER, VD_BODY_NONE, 0, NULL,
	  "versions and instance count" },
	{ "GET", "/api/v1/system/metrics", vd_h_system_metrics, VD_ROLE_VIEWER, VD_BODY_NONE, 0, NULL,
	  "host CPU, load, memory, disk and uptime" },
	{ "GET", "/api/v1/system/settings", vd_h_settings_get, VD_ROLE_VIEWER, VD_BODY_NONE, 0, NULL,
	  "the settings document" },
	{ "PUT", "/api/v1/system/settings", vd_h_settings_put, VD_ROLE_ADMIN, VD_BODY_JSON,
	  VD_SETTINGS_MAX_BODY, vd_v_settings_put, "change any subset of the settings" },
	{ "GET", "/api/v1/instances", vd_h_instances_list, VD_ROLE_VIEWER, VD_BODY_NONE, 0, NULL,
	  "every instance with its state" },
	{ "POST", "/api/v1/instances", vd_h_instances_create, VD_ROLE_OPERATOR, VD_BODY_JSON,
	  VD_INSTANCE_CREATE_MAX_BODY, NULL, "create and start an instance" },
	{ "GET", "/api/v1/instances/:id", vd_h_instances_get, VD_ROLE_VIEWER, VD_BODY_NONE, 0, NULL,
	  "one instance" },
	{ "DELETE", "/api/v1/instances/:id", vd_h_instances_delete, VD_ROLE_OPERATOR, VD_BODY_NONE, 0,
	  NULL, "remove the container and files (?keep_data=true keeps the data)" },
	{ "POST", "/api/v1/instances/:id/start", vd_h_instances_start, VD_ROLE_OPERATOR, VD_BODY_NONE,
	  0, NULL, "start (recreating a missing container)" },
	{ "POST", "/api/v1/instances/:id/stop", vd_h_instances_stop, VD_ROLE_OPERATOR, VD_BODY_NONE, 0,
	  NULL, "stop" },
	{ "POST", "/api/v1/instances/:id/restart", vd_h_instances_restart, VD_ROLE_OPERATOR,
	  VD_BODY_NONE, 0, NULL, "restart" },
	{ "GET", "/api/v1/instances/:id/stats", vd_h_instances_stats, VD_ROLE_VIEWER, VD_BODY_NONE, 0,
	  NULL, "state, uptime, memory and keys" },
	{ "GET", "/api/v1/instances/:id/acls", vd_h_acls_list, VD_ROLE_VIEWER, VD_BODY_NONE, 0, NULL,
	  "the instance's ACL users (never a password or hash)" },
	{ "POST", "/api/v1/instances/:id/acls", vd_h_acls_create, VD_ROLE_OPERATOR, VD_BODY_JSON,
	  VD_ACL_REQUEST_MAX_BODY, NULL, "add a user and reload the ACL" },
	{ "GET", "/api/v1/instances/:id/acls/:username", vd_h_acls_get, VD_ROLE_VIEWER, VD_BODY_NONE, 0,
	  NULL, "one ACL user" },
	{ "PUT", "/api/v1/instances/:id/acls/:username", vd_h_acls_update, VD_ROLE_OPERATOR,
	  VD_BODY_JSON, VD_ACL_REQUEST_MAX_BODY, NULL, "change any subset of a user's fields" },
	{ "DELETE", "/api/v1/instances/:id/acls/:username", vd_h_acls_delete, VD_ROLE_OPERATOR,
	  VD_BODY_NONE, 0, NULL, "delete a user and close its sessions" },
	{ "GET", "/api/v1/instances/:id/effective-acls", vd_h_acls_effective, VD_ROLE_VIEWER,
	  VD_BODY_NONE, 0, NULL, "what the running server enforces, and drift from the store" },
	{ "GET", "/api/v1/instances/:id/config", vd_h_config_get, VD_ROLE_VIEWER, VD_BODY_NONE, 0, NULL,
	  "managed parameters, live or restart-only, and drift from the running server" },
	{ "PUT", "/api/v1/instances/:id/config", vd_h_config_put, VD_ROLE_OPERATOR, VD_BODY_JSON,
	  VD_TEMPLATE_MAX_BODY, NULL, "change parameters live, or by a restart" },
	{ "GET", "/api/v1/config/templates", vd_h_templates_list, VD_ROLE_VIEWER, VD_BODY_NONE, 0, NULL,
	  "built-in and stored templates" },
	{ "POST", "/api/v1/config/templates", vd_h_templates_create, VD_ROLE_OPERATOR, VD_BODY_JSON,
	  VD_TEMPLATE_MAX_BODY, NULL, "create a template" },
	{ "GET", "/api/v1/config/templates/:name", vd_h_templates_get, VD_ROLE_VIEWER, VD_BODY_NONE, 0,
	  NULL, "one template" },
	{ "PUT", "/api/v1/config/templates/:name", vd_h_templates_update, VD_ROLE_OPERATOR,
	  VD_BODY_JSON, VD_TEMPLATE_MAX_BODY, NULL, "replace a template (not a built-in)" },
	{ "DELETE", "/api/v1/config/templates/:name", vd_h_templates_delete, VD_ROLE_OPERATOR,
	  VD_BODY_NONE, 0, NULL, "delete a template no instance uses (not a built-in)" },
};

const size_t vd_routes_n = sizeof(vd_routes) / sizeof(vd_routes[0]);

static int
check_id(const char *value, struct vd_error *err)
{
	return vd_name_check("id", value, err);
}

static int
check_username(const char *value, struct vd_error *err)
{
	return vd_acl_check_username("username", value, err);
}

static int
check_name(const char *value, struct vd_error *err)
{
	return vd_name_check("name", value, err);
}

/* Rules for path parameters, by name. */
const struct vd_param_rule vd_param_rules[] = {
	{ "id", check_id },
	{ "username", check_username },
	{ "name", check_name },
};

const size_t vd_param_rules_n = sizeof(vd_param_rules) / sizeof(vd_param_rules[0]);
