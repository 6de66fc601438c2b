# The match clauses of the five examples/authentik rules, one output line (the
# rule's name) per accepted (event, rule) pair. A pattern `name` or `_` means
# "present and non-null"; a literal means equality (`known_device: false`
# holds only when the field is present and false).
.context as $c
| if .action == "model_created" then
    $c.model as $m
    | select($m.app == "authentik_core" and $m.pk != null)
    | if $m.model_name == "application" then "application_without_bindings"
      elif $m.model_name == "user" then "welcome_email"
      else empty end
  elif .action == "model_updated" then
    $c.model as $m
    | select($m.app == "authentik_core" and $m.pk != null)
    | if $m.model_name == "user" then "archive_ssh_keys_on_deactivation"
      elif $m.model_name == "group" and $c.diff.users.add != null then "group_addition_history"
      else empty end
  elif .action == "login" then
    select($c.auth_method_args.known_device == false) | "unknown_device_login"
  else empty end
