Feature: IoT Real-time Monitoring
  As a Syndic
  I want to monitor sensors in real-time
  So that I can detect issues immediately

  Scenario: Receive live sensor data
    Given I am authenticated as a Syndic
    And I have 5 active sensors in Building "Résidence du Parc"
    When I open the IoT Dashboard
    Then I should see live data updating every 5 seconds
    And sensor status should show "Active" with green indicator

  Scenario: Alert on threshold exceeded
    Given I have a water sensor with max threshold 50 L/h
    When the sensor reports 75 L/h
    Then a "Critical" alert should be created
    And I should receive an email notification
    And the dashboard should show a red alert badge
