-- The part of authentik's PostgreSQL schema Herald's `--mapping authentik` relies on.
--
-- This is Herald's own record, written for Herald: which tables and columns it reads and
-- writes, with the types it expects and the values it gives on insert to NOT NULL columns
-- that have no database default (Django fills those in Python, so a direct INSERT must).
-- `herald db init --mapping authentik` checks that every table and column named here
-- exists and names what is missing (src/store/pgent/authentik.rs, RELIED_ON).
--
-- Versions: authentik 2025.2 to 2026.5. Sources: the models in authentik/core/models.py,
-- authentik/events/models.py and authentik/policies/models.py of goauthentik/authentik,
-- and these migrations:
--   authentik_core    0001_initial, 0021_source_user_path_user_path, 0030_user_type,
--                     0050_user_last_updated_and_more (2025.8: user.last_updated),
--                     0053/0054 (2025.12: application slug and meta_icon become text),
--                     0056_user_roles (2025.12: group.parent_id dropped),
--                     0057_remove_user_groups_remove_user_user_permissions_and_more
--                     (2026.2: the membership table is renamed, see below),
--                     0059_add_application_meta_hide (application.meta_hide; filled when
--                     present, release not confirmed)
--   authentik_policies 0001_initial, 0005_binding_group, 0007_policybindingmodel_policy_engine_mode,
--                     0011_policybinding_failure_result_and_more
--   authentik_events  0001_squashed_0019_alter_notificationtransport_webhook_url,
--                     0014_notification_hyperlink_notification_hyperlink_label_and_more
--
-- The tables live in the tenant's schema: `public` for the default tenant
-- (`--authentik-schema` names another). Herald's own tables live in the schema `herald`.
-- The statements below are a description, not something Herald runs.

-- User  <->  authentik_core_user            (Herald key `pk` = id)
CREATE TABLE authentik_core_user (
    id                    integer PRIMARY KEY,  -- identity; Herald's upsert gives the key explicitly
    username              varchar(150) NOT NULL,       -- User.username
    name                  text NOT NULL,               -- User.name
    email                 varchar(254) NOT NULL,       -- User.email   (insert default '')
    is_active             boolean NOT NULL,            -- User.is_active (insert default true)
    attributes            jsonb NOT NULL,              -- User.attributes (insert default {})
    type                  text NOT NULL,               -- User.type (insert default 'internal')
    path                  text NOT NULL,               -- User.path (insert default 'users')
    -- not modelled, given on insert only:
    password              varchar(128) NOT NULL,       -- '!' + random text: Django's unusable password
    first_name            varchar(150) NOT NULL,       -- ''
    last_name             varchar(150) NOT NULL,       -- ''
    date_joined           timestamptz NOT NULL,        -- now()
    uuid                  uuid NOT NULL,               -- gen_random_uuid()
    password_change_date  timestamptz NOT NULL,        -- now()
    last_updated          timestamptz NOT NULL         -- 2025.8+: now() on every insert and update by Herald
);

-- Group  <->  authentik_core_group          (Herald key `pk` = group_uuid; events write 32 hex digits)
CREATE TABLE authentik_core_group (
    group_uuid    uuid PRIMARY KEY,
    name          text NOT NULL,                       -- Group.name
    attributes    jsonb NOT NULL,                      -- Group.attributes (insert default {})
    is_superuser  boolean NOT NULL                     -- Group.is_superuser (insert default false)
);

-- Group.users  <->  the membership link table, chosen when the store opens:
--   authentik_core_user_ak_groups when it exists (up to 2025.12), otherwise
--   authentik_core_user_groups, but only if its group_id is a uuid (from 2026.2; before
--   that, this name is Django's auth.Group link table with an integer group_id).
CREATE TABLE authentik_core_user_groups (
    id        integer PRIMARY KEY,                     -- identity, left to the database
    user_id   integer NOT NULL,                        -- the User
    group_id  uuid NOT NULL                            -- the Group
);

-- Application  <->  authentik_core_application  (Herald key `pk` = policybindingmodel_ptr_id)
CREATE TABLE authentik_core_application (
    policybindingmodel_ptr_id  uuid PRIMARY KEY,       -- also a row of authentik_policies_policybindingmodel
    name              text NOT NULL,                   -- Application.name
    slug              text NOT NULL,                   -- Application.slug
    "group"           text NOT NULL,                   -- Application.group (insert default '')
    meta_launch_url   text NOT NULL,                   -- Application.meta_launch_url (insert default '')
    -- not modelled, given on insert only:
    meta_description  text NOT NULL,                   -- ''
    meta_publisher    text NOT NULL,                   -- ''
    meta_icon         text NOT NULL,                   -- ''
    open_in_new_tab   boolean NOT NULL                 -- false   (meta_hide boolean: false, when present)
);

-- The parent row an application needs (multi-table inheritance); inserted before the
-- application, `ON CONFLICT DO NOTHING`.
CREATE TABLE authentik_policies_policybindingmodel (
    pbm_uuid            uuid PRIMARY KEY,              -- the application's key
    policy_engine_mode  text NOT NULL                  -- 'any' (authentik's default)
);

-- PolicyBinding  <->  authentik_policies_policybinding  (Herald key `pk` = policy_binding_uuid)
CREATE TABLE authentik_policies_policybinding (
    policy_binding_uuid  uuid PRIMARY KEY,
    target_id            uuid NOT NULL,                -- PolicyBinding.target
    enabled              boolean NOT NULL,             -- PolicyBinding.enabled (insert default true)
    "order"              integer NOT NULL,             -- PolicyBinding.order (insert default 0; authentik has none)
    negate               boolean NOT NULL,             -- PolicyBinding.negate (insert default false)
    policy_id            uuid NULL,                    -- PolicyBinding.policy
    group_id             uuid NULL,                    -- PolicyBinding.group
    user_id              integer NULL,                 -- PolicyBinding.user
    timeout              integer NOT NULL,             -- insert only: 30
    failure_result       boolean NOT NULL              -- insert only: false
);

-- Read only: a notification's event_id points here when the event is authentik's.
CREATE TABLE authentik_events_event (
    event_uuid  uuid PRIMARY KEY
);

-- `notify` inserts one row per recipient that exists, in the event's transaction.
CREATE TABLE authentik_events_notification (
    uuid      uuid PRIMARY KEY,                        -- gen_random_uuid()
    severity  text NOT NULL,                           -- notice | warning | alert
    body      text NOT NULL,                           -- the rendered body
    created   timestamptz NOT NULL,                    -- now()
    seen      boolean NOT NULL,                        -- false
    event_id  uuid NULL,                               -- the event's uuid when authentik_events_event has it, else NULL
    user_id   integer NOT NULL                         -- the recipient
    -- hyperlink, hyperlink_label (2025.12+) are nullable and left NULL
);
