from metamon.env.agent_player import ServerPopup


def test_popup_about_an_old_battle_room_is_not_a_refused_start():
    late_choice = ServerPopup(
        "RandomBa0137287338",
        'You tried to send "/choose move substitute" to the room "battle-gen1ou-1636" but it failed '
        "because you were not in that room.",
    )
    assert late_choice.about_a_battle_room
    rejected_team = ServerPopup("Me", "Your team was rejected for the following reasons:\n- Mew is banned.")
    assert not rejected_team.about_a_battle_room
