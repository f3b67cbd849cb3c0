-- Retention: letters older than the operator's limit go (`prune`), recorded like every other action.
ALTER TABLE actions DROP CONSTRAINT actions_action_check;
ALTER TABLE actions ADD CONSTRAINT actions_action_check
    CHECK (action IN ('collect', 'list', 'show', 'replay', 'discard', 'prune'));
