"""Find across the fleet: every engine's containers, images and volumes kept in the database
(``EngineObject``) by the engines watcher, so that one search box answers for all the hosts a
person may see with a few queries, never a call to each engine per keystroke.

``reading`` turns an engine's answers into rows (the adapter), ``keeping`` writes them (a
snapshot of a host when its event stream starts and every few minutes, one row per container
event, a kind again on an image or volume event), ``search`` answers a person, and ``views`` /
``api`` only translate. The fleet's watcher knows none of this: hosts.registrations plugs
``keeping`` into its listeners."""
