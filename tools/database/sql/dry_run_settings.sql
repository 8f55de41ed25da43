-- propose_table/proof.py: the dry run's transaction settings (local to it)
SELECT set_config('lock_timeout', '2s', true), set_config('statement_timeout', '15s', true),
       set_config('standard_conforming_strings', 'on', true)
